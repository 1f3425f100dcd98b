"""The worker's one-round-trip job claim (WakeWorker.start_jobs, claim_jobs.lua): a queued job runs
once, a job another worker holds is left alone, and a job no longer queued or not yet due is
neither claimed nor counted a try."""

from __future__ import annotations

import asyncio
from typing import Any

from arq.connections import ArqRedis, create_pool
from arq.constants import in_progress_key_prefix, retry_key_prefix
from arq.worker import func
from redis.asyncio import Redis

from taskgate.settings import Settings
from taskgate.store.connection import arq_redis_settings
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts
from taskgate.worker.arq_worker import WakeWorker, job_deserializer, job_serializer


async def _pool(settings: Settings, keys: Keys) -> ArqRedis:
    return await create_pool(
        arq_redis_settings(settings),
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
        default_queue_name=keys.arq_queue(),
    )


def _worker(pool: ArqRedis, keys: Keys, scripts: Scripts, ran: list[int]) -> WakeWorker:
    async def job(ctx: dict[str, Any], i: int) -> None:
        ran.append(i)

    return WakeWorker(
        functions=[func(job, name="job")],
        keys=keys,
        scripts=scripts,
        queue_name=keys.arq_queue(),
        redis_pool=pool,
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
        max_jobs=10,
        keep_result=0,
        max_tries=1,
        handle_signals=False,
    )


async def _watch_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_watch", {}).get("calls", 0))


async def test_claim_runs_queued_jobs_once_and_skips_held_gone_and_delayed_ones(
    settings: Settings, keys: Keys, redis: Redis, scripts: Scripts
) -> None:
    pool = await _pool(settings, keys)
    ran: list[int] = []
    worker = _worker(pool, keys, scripts, ran)
    try:
        ids = {name: keys.arq_job_id(name, 1) for name in ("free", "held", "gone", "later")}
        await pool.enqueue_job("job", 1, _job_id=ids["free"])
        await pool.enqueue_job("job", 2, _job_id=ids["held"])
        await pool.enqueue_job("job", 3, _job_id=ids["later"], _defer_by=60)
        await redis.set(in_progress_key_prefix + ids["held"], b"1", px=60_000)  # another worker's
        popped = [ids[name].encode() for name in ("free", "held", "gone", "later", "free")]
        watches = await _watch_calls(redis)
        await worker.start_jobs(popped)
        assert await _watch_calls(redis) == watches  # claimed by SET NX, not arq's WATCH transaction
        await asyncio.gather(*worker.tasks.values())
        await worker.start_jobs([ids["free"].encode()])  # popped again after it ran: gone now
        await asyncio.gather(*worker.tasks.values())

        assert ran == [1]
        assert worker.job_counter == 0
        assert await redis.exists(in_progress_key_prefix + ids["held"]) == 1  # not taken from its holder
        assert await redis.exists(in_progress_key_prefix + ids["gone"]) == 0  # not claimed
        assert await redis.exists(in_progress_key_prefix + ids["later"]) == 0  # not due: not claimed
        for name in ("held", "gone", "later"):  # a job not claimed is not counted a try either
            assert await redis.exists(retry_key_prefix + ids[name]) == 0
        assert await redis.exists(in_progress_key_prefix + ids["free"]) == 0  # finished: released
        assert await redis.zscore(keys.arq_queue(), ids["held"]) is not None
        assert await redis.zscore(keys.arq_queue(), ids["free"]) is None
    finally:
        await worker.close()
        for job_id in ids.values():
            await redis.delete(in_progress_key_prefix + job_id, "arq:job:" + job_id, "arq:retry:" + job_id)
