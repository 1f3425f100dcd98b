"""Typed calls of the account pool scripts (pool/lua): accounts, their health and sweeps (S9)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from taskgate.store.keys import Keys
from taskgate.store.script_api.typed import now_arg, typed
from taskgate.store.scripts import Scripts


@dataclass(frozen=True, slots=True)
class StateChange:
    old_state: str
    new_state: str


@dataclass(frozen=True, slots=True)
class AccountReport:
    old_state: str  # "" (and new_state "") for an unknown account
    new_state: str
    cooldown_until: int


@dataclass(frozen=True, slots=True)
class Sweep:
    accounts_returned: int
    tasks_failed: int


def _account_keys(k: Keys, account_id: str) -> list[str]:
    return [k.account(account_id), k.accounts(), k.account_secret(account_id)]


@typed("put_account")
async def put_account(
    s: Scripts, k: Keys, *, now: int | None = None, account_id: str, fields: Mapping[str, str], secret: str
) -> bool:
    """True when the account was created, False when updated; ``secret`` "" keeps the stored one."""
    r = await s.call(
        "put_account",
        keys=_account_keys(k, account_id),
        args=[k.base, now_arg(now), account_id, json.dumps(fields), secret],
    )
    return int(r[2]) == 1


@typed("remove_account")
async def remove_account(s: Scripts, k: Keys, *, account_id: str) -> bool:
    """False when no such account existed."""
    r = await s.call("remove_account", keys=_account_keys(k, account_id), args=[k.base, account_id])
    return int(r[1]) == 1


@typed("report_account")
async def report_account(
    s: Scripts,
    k: Keys,
    *,
    now: int | None = None,
    account_id: str,
    kind: str,
    retry_after_ms: int,
    window_ms: int,
    threshold: int,
    base_ms: int,
    max_ms: int,
    reason: str,
) -> AccountReport:
    r = await s.call(
        "report_account",
        keys=[k.account(account_id), k.account_failures(account_id)],
        args=[
            k.base,
            now_arg(now),
            account_id,
            kind,
            retry_after_ms,
            window_ms,
            threshold,
            base_ms,
            max_ms,
            reason,
        ],
    )
    return AccountReport(str(r[1]), str(r[2]), int(r[3]))


@typed("set_account_state")
async def set_account_state(
    s: Scripts,
    k: Keys,
    *,
    now: int | None = None,
    account_id: str,
    state: str,
    until_ms: int,
    by: str,
    reason: str,
) -> StateChange:
    """NotFound("account") for an unknown account."""
    r = await s.call(
        "set_account_state",
        keys=[k.account(account_id)],
        args=[k.base, now_arg(now), account_id, state, until_ms, by, reason],
    )
    return StateChange(str(r[1]), str(r[2]))


@typed("sweep_accounts")
async def sweep_accounts(
    s: Scripts, k: Keys, *, now: int | None = None, byoa_max_ms: int, limit: int
) -> Sweep:
    r = await s.call(
        "sweep_accounts",
        keys=[k.cooldowns(), k.byoa_waiting()],
        args=[k.base, now_arg(now), byoa_max_ms, limit],
    )
    return Sweep(int(r[1]), int(r[2]))
