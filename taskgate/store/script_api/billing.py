"""Typed calls of the billing scripts (billing/lua): wallet adjustments, incorrect-task counts."""

from __future__ import annotations

from dataclasses import dataclass

from taskgate.store.keys import Keys
from taskgate.store.script_api.typed import now_arg, typed
from taskgate.store.scripts import Scripts


@dataclass(frozen=True, slots=True)
class Balance:
    available: int
    frozen: int
    consumed: int


@typed("adjust_wallet")
async def adjust_wallet(
    s: Scripts,
    k: Keys,
    *,
    now: int | None = None,
    user_id: str,
    unit: str,
    amount: int,
    kind: str,
    reason: str,
) -> Balance:
    r = await s.call(
        "adjust_wallet",
        keys=[k.wallet(user_id), k.ledger(user_id)],
        args=[now_arg(now), user_id, unit, amount, kind, reason],
    )
    return Balance(int(r[1]), int(r[2]), int(r[3]))


@typed("record_incorrect")
async def record_incorrect(s: Scripts, k: Keys, *, now: int | None = None, user_id: str) -> int:
    """The user's incorrect tasks today; NotFound("user") for an unknown user."""
    r = await s.call("record_incorrect", keys=[k.user(user_id)], args=[k.base, now_arg(now), user_id])
    return int(r[1])
