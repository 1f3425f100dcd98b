"""Typed wrappers of the scheduler's scripts: dispatch, lease reaping."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from redis.asyncio import Redis

from taskgate.settings import Settings
from taskgate.store.keys import ARQ_JOB_KEY_PREFIX, Keys
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
        result = await self.scripts.call(
            "dispatch_tasks",
            keys=[self.keys.sched(), self.keys.arq_queue(), self.keys.worker_jobs()],
            args=[
                self.keys.base,
                now_ms or "",
                max_n or s.dispatch_batch,
                s.lease_ms,
                round(s.relax_share * 1000),
                s.relax_max_wait_ms,
                ARQ_JOB_KEY_PREFIX,
                s.job_timeout_s * 1000 + JOB_TTL_EXTRA_MS,
                s.pending_max_wait_ms,
            ],
        )
        flat = result[2:]
        return [Dispatch(flat[i], int(flat[i + 1]), flat[i + 2]) for i in range(0, len(flat), 3)]

    async def reap(self, limit: int = 500, *, now_ms: int | None = None) -> list[tuple[str, str]]:
        """Return expired leases: their tasks are retried (pending) or failed for good."""
        result = await self.scripts.call(
            "reap_leases",
            keys=[self.keys.leases()],
            args=[self.keys.base, now_ms or "", limit, self.settings.max_attempts],
        )
        flat = result[2:]
        reaped = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
        for task_id, status in reaped:
            log.warning("lease_expired", task_id=task_id, status=status)
        return reaped
