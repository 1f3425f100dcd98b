"""Account health (S9): failures cool an account down with growing backoff (never shortened,
Retry-After honoured), captcha / ban / quota / fast hours change its state, cooled-down accounts
return by the sweep, auto-disabled ones only through a passing probe, operator-disabled never.
The sweep also fails BYOA tasks that waited past the maximum with no account able to run them (S6).

Health only ever makes an account's state worse (a captcha never downgrades a ban, a transient
failure never turns a banned account into a cooling-down one that the sweep would bring back);
the two ways back are the sweep (cooldown over) and a passing probe (captcha, auto-disabled)."""

from __future__ import annotations

from enum import StrEnum

import structlog
from redis.asyncio import Redis

from taskgate.models import AccountState
from taskgate.pool.registry import AccountRegistry
from taskgate.providers.base import ErrorKind, Provider, ProviderError
from taskgate.settings import Settings
from taskgate.store import script_api
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts

log = structlog.get_logger(__name__)

PROBED_STATES = frozenset({AccountState.NEEDS_CAPTCHA, AccountState.AUTO_DISABLED, AccountState.COOLING_DOWN})
# a failed probe reports these; a transient probe failure says nothing about the account
PROBE_REPORTED = frozenset(ErrorKind) - {ErrorKind.TRANSIENT, ErrorKind.INCORRECT}
SWEEP_LIMIT = 500


class Signal(StrEnum):
    """What report_account.lua hears besides a failure's ErrorKind."""

    SUCCESS = (
        "success"  # a call worked: the cooldown streak ends (finish_task.lua does it for a completed run)
    )
    PROBE_PASSED = "probe_passed"  # a health probe worked: captcha / auto-disabled -> active


class AccountHealth:
    def __init__(self, redis: Redis, scripts: Scripts, keys: Keys, settings: Settings) -> None:
        self.redis, self.scripts, self.keys, self.settings = redis, scripts, keys, settings

    async def report(
        self,
        account_id: str,
        kind: ErrorKind | Signal | None,
        retry_after_s: float | None = None,
        *,
        reason: str = "",
        now_ms: int | None = None,
    ) -> tuple[str, str]:
        """Record how a call on the account went (``None``: it worked); returns (old, new) state.
        Unknown (removed) accounts give ``("", "")``."""
        s, signal = self.settings, Signal.SUCCESS if kind is None else kind
        result = await script_api.report_account(
            self.scripts,
            self.keys,
            now=now_ms,
            account_id=account_id,
            kind=str(signal),
            retry_after_ms=int((retry_after_s or 0) * 1000),
            window_ms=s.health_window_ms,
            threshold=s.health_threshold,
            base_ms=s.cooldown_base_ms,
            max_ms=s.cooldown_max_ms,
            reason=reason or str(signal),
        )
        old, new = result.old_state, result.new_state
        if old != new:
            log.warning(
                "account_health_changed",
                account_id=account_id,
                old=old,
                new=new,
                kind=str(signal),
                cooldown_until=result.cooldown_until,
            )
        return old, new

    async def sweep(self, now_ms: int | None = None) -> tuple[int, int]:
        """Return cooled-down accounts; fail BYOA tasks past the maximum wait. (returned, failed)"""
        result = await script_api.sweep_accounts(
            self.scripts, self.keys, now=now_ms, byoa_max_ms=self.settings.byoa_max_wait_ms, limit=SWEEP_LIMIT
        )
        returned, failed = result.accounts_returned, result.tasks_failed
        if returned or failed:
            log.info("accounts_swept", accounts_returned=returned, byoa_tasks_failed=failed)
        return returned, failed

    async def probe_all(self, registry: AccountRegistry, providers: dict[str, Provider]) -> int:
        """The periodic job: probe captcha, auto-disabled and cooling-down accounts. A passing probe
        brings a captcha or auto-disabled account back (a cooldown still runs out); a failing one
        may make it worse (a ban). Operator-disabled and banned accounts are never probed.
        Returns how many accounts came back."""
        restored = 0
        for account in await registry.list():
            if account["state"] in PROBED_STATES:
                restored += await self._probe(registry, providers, account["id"])
        return restored

    async def _probe(self, registry: AccountRegistry, providers: dict[str, Provider], account_id: str) -> int:
        try:
            access = await registry.access(account_id)
            provider = providers.get(access.provider)
            if provider is None:
                log.warning("account_probe_skipped", account_id=account_id, provider=access.provider)
                return 0
            await provider.probe(access)
        except ProviderError as exc:
            log.info("account_probe_failed", account_id=account_id, kind=str(exc.kind))
            if exc.kind in PROBE_REPORTED:
                await self.report(account_id, exc.kind, exc.retry_after_s, reason=f"health probe: {exc}")
            return 0
        except Exception:
            log.exception("account_probe_crashed", account_id=account_id)
            return 0
        old, new = await self.report(account_id, Signal.PROBE_PASSED, reason="health probe passed")
        return int(old != new and new == AccountState.ACTIVE)
