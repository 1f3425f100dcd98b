"""Typed wrappers of the scheduler's scripts: dispatch, lease reaping."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from redis.asyncio import Redis

from taskgate.settings import Settings
from taskgate.store import script_api
from taskgate.store.keys import ARQ_IN_PROGRESS_KEY_PREFIX, ARQ_JOB_KEY_PREFIX, Keys
from taskgate.store.scripts import Scripts

log = structlog.get_logger(__name__)

JOB_TTL_EXTRA_MS = 86_400_000  # an arq job key outlives its job by a day, as arq's own enqueue does


@dataclass(frozen=True, slots=True)
class Dispatch:
    task_id: str
    attempt: int
    account_id: str


class Dispatcher:
    def __init__(self, redis: Redis, scripts: Scripts, keys: Keys, settings: Settings) -> None:
        self.redis, self.scripts, self.keys, self.settings = redis, scripts, keys, settings

    async def dispatch(self, max_n: int | None = None, *, now_ms: int | None = None) -> list[Dispatch]:
        """One atomic decision round: up to ``max_n`` tasks booked to accounts and enqueued."""
        s = self.settings
        dispatched = await script_api.dispatch_tasks(
            self.scripts,
            self.keys,
            now=now_ms,
            max_n=max_n or s.dispatch_batch,
            lease_ms=s.lease_ms,
            relax_pm=round(s.relax_share * 1000),
            relax_wait=s.relax_max_wait_ms,
            job_prefix=ARQ_JOB_KEY_PREFIX,
            job_ttl_ms=s.job_timeout_s * 1000 + JOB_TTL_EXTRA_MS,
            max_wait_ms=s.pending_max_wait_ms,
            max_queued=s.dispatch_max_queued,
        )
        return [Dispatch(d.task_id, d.attempt, d.account_id) for d in dispatched]

    async def reap(self, limit: int = 500, *, now_ms: int | None = None) -> list[tuple[str, str]]:
        """Return expired leases: their tasks are retried (pending) or failed for good; an attempt
        whose job no worker has started yet keeps its place (queued, lease extended)."""
        reaped = await script_api.reap_leases(
            self.scripts,
            self.keys,
            now=now_ms,
            limit=limit,
            max_attempts=self.settings.max_attempts,
            lease_ms=self.settings.lease_ms,
            job_prefix=ARQ_JOB_KEY_PREFIX,
            progress_prefix=ARQ_IN_PROGRESS_KEY_PREFIX,
        )
        for task_id, status in reaped:
            if status == "queued":
                log.info("lease_extended_job_not_started", task_id=task_id)
            else:
                log.warning("lease_expired", task_id=task_id, status=status)
        return reaped
