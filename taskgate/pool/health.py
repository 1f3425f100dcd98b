"""Account health (S9): failures cool an account down with growing backoff (never shortened,
Retry-After honoured), captcha / ban / quota / fast hours change its state, cooled-down accounts
return by the sweep, auto-disabled ones only through a passing probe, operator-disabled never."""

from __future__ import annotations

import structlog
from redis.asyncio import Redis

from taskgate.models import AccountState
from taskgate.pool.registry import AccountRegistry
from taskgate.providers.base import ErrorKind, Provider, ProviderError
from taskgate.settings import Settings
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts

log = structlog.get_logger(__name__)
PROBED_STATES = frozenset({AccountState.NEEDS_CAPTCHA, AccountState.AUTO_DISABLED})
SWEEP_LIMIT = 500


class AccountHealth:
    def __init__(self, redis: Redis, scripts: Scripts, keys: Keys, settings: Settings) -> None:
        self.redis, self.scripts, self.keys, self.settings = redis, scripts, keys, settings

    async def report(
        self,
        account_id: str,
        kind: ErrorKind,
        *,
        retry_after_s: float | None = None,
        reason: str = "",
        now_ms: int | None = None,
    ) -> tuple[str, str]:
        """Record a failed upstream call; returns the account's (old, new) state."""
        s = self.settings
        result = await self.scripts.call(
            "report_account",
            keys=[self.keys.account(account_id), self.keys.account_failures(account_id)],
            args=[
                self.keys.base,
                now_ms or "",
                account_id,
                str(kind),
                int((retry_after_s or 0) * 1000),
                s.health_window_ms,
                s.health_threshold,
                s.cooldown_base_ms,
                s.cooldown_max_ms,
                reason or str(kind),
            ],
        )
        if result[1] != result[2]:
            log.warning(
                "account_health_changed",
                account_id=account_id,
                old=result[1],
                new=result[2],
                kind=str(kind),
                cooldown_until=result[3],
            )
        return str(result[1]), str(result[2])

    async def sweep(self, *, now_ms: int | None = None) -> tuple[int, int]:
        """Return cooled-down accounts; fail BYOA tasks past the maximum wait. (returned, failed)"""
        result = await self.scripts.call(
            "sweep_accounts",
            keys=[self.keys.cooldowns(), self.keys.byoa_waiting()],
            args=[self.keys.base, now_ms or "", self.settings.byoa_max_wait_ms, SWEEP_LIMIT],
        )
        return int(result[1]), int(result[2])

    async def probe_all(self, registry: AccountRegistry, providers: dict[str, Provider]) -> int:
        """Probe auto-disabled and captcha accounts; a passing probe brings one back. Returns how many."""
        restored = 0
        for account in await registry.list():
            if account["state"] not in PROBED_STATES:
                continue
            access = await registry.access(account["id"])
            try:
                await providers[access.provider].probe(access)
            except ProviderError as exc:
                log.info("account_probe_failed", account_id=account["id"], kind=str(exc.kind))
                continue
            await registry.set_state(
                account["id"], AccountState.ACTIVE, by="health", reason="health probe passed"
            )
            restored += 1
        return restored
