"""arq as the worker shell, tuned: JSON jobs, many concurrent jobs, and a wake-up list instead of a
fixed poll sleep, so a dispatched task starts within one Redis round trip (arq's own loop sleeps
``poll_delay`` between polls; here that is only the upper bound of an idle wait)."""

from __future__ import annotations

import json
from typing import Any

from arq.worker import Worker

from taskgate.store.keys import Keys


def job_serializer(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def job_deserializer(raw: bytes) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(raw)
    return result


class WakeWorker(Worker):
    """An arq Worker whose idle wait is a BLPOP on the scheduler's worker-wake list."""

    def __init__(self, *args: Any, keys: Keys, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wake_key = keys.worker_wake()

    async def main(self) -> None:  # mirrors arq.Worker.main with a blocking wait instead of sleep
        if self._pool is None:
            from arq.connections import create_pool

            self._pool = await create_pool(
                self.redis_settings, job_deserializer=self.job_deserializer,
                job_serializer=self.job_serializer, default_queue_name=self.queue_name,
                expires_extra_ms=self.expires_extra_ms,
            )
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        while True:
            await self._poll_iteration()
            if self.job_counter >= self.max_jobs or not self.allow_pick_jobs:
                await self._sleep(self.poll_delay_s)
                continue
            await self.pool.blpop([self.wake_key], timeout=self.poll_delay_s)

    async def _sleep(self, seconds: float) -> None:
        import asyncio

        await asyncio.sleep(seconds)
