"""A claimed job starts from what its claim read (WakeWorker._run_lean): the job data, arq's retry
count and the attempt's task hash come with the claim, and arq's run_job guarantees still hold: an
expired job is dropped, a job tried before is not run again, the job timeout applies, a cancelled
job stays queued (and is not run again), anything else is run by arq's own run_job, counted once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq.connections import ArqRedis, create_pool
from arq.worker import func
from redis.asyncio import Redis

from taskgate.services import assemble
from taskgate.settings import Settings
from taskgate.store.connection import arq_redis_settings
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts
from taskgate.worker.arq_worker import WakeWorker, job_deserializer, job_serializer
from taskgate.worker.runner import _shutdown, build_worker
from tests.factories import task_fields
from tests.worker.test_watcher import HeldUpstream, dispatched, fast_settings, until

ARQ = ("arq:job:", "arq:in-progress:", "arq:retry:")


@pytest.fixture
async def pool(settings: Settings, keys: Keys) -> AsyncIterator[ArqRedis]:
    arq_pool = await create_pool(
        arq_redis_settings(settings),
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
        default_queue_name=keys.arq_queue(),
    )
    yield arq_pool
    await arq_pool.aclose()


class Calls:
    """A stand-in ``run_task``: records each call; ``block`` holds it until cancelled."""

    def __init__(self, *, block: bool = False) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.cancelled = 0
        self.block = block

    async def run_task(self, ctx: dict[str, Any], task_id: str, attempt: int, task_hash: Any = None) -> str:
        self.calls.append((task_id, attempt, task_hash, ctx["job_try"]))
        if self.block:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return "watched"


def worker_for(pool: ArqRedis, keys: Keys, scripts: Scripts, calls: Calls, **kwargs: Any) -> WakeWorker:
    return WakeWorker(
        functions=[func(calls.run_task, name="run_task")],  # type: ignore[arg-type]
        keys=keys,
        scripts=scripts,
        queue_name=keys.arq_queue(),
        redis_pool=pool,
        max_jobs=10,
        keep_result=0,
        max_tries=1,
        handle_signals=False,
        **kwargs,
    )


async def enqueue_attempt(pool: ArqRedis, keys: Keys, task_id: str, attempt: int = 1) -> str:
    job_id = keys.arq_job_id(task_id, attempt)
    await pool.enqueue_job("run_task", task_id, attempt, _job_id=job_id)
    return job_id


async def arq_keys(redis: Redis, keys: Keys, job_id: str) -> dict[str, bool]:
    """Which of the job's arq keys exist, and whether it is still queued."""
    found = {prefix: bool(await redis.exists(prefix + job_id)) for prefix in ARQ}
    return found | {"queued": await redis.zscore(keys.arq_queue(), job_id) is not None}


NONE_LEFT = {"arq:job:": False, "arq:in-progress:": False, "arq:retry:": False, "queued": False}


async def run_popped(worker: WakeWorker, *job_ids: str) -> None:
    await worker.start_jobs([job_id.encode() for job_id in job_ids])
    await asyncio.gather(*worker.tasks.values())


async def test_a_claimed_job_runs_with_the_task_hash_its_claim_read(pool, keys, scripts, redis):
    calls = Calls()
    worker = worker_for(pool, keys, scripts, calls)
    await redis.hset(keys.task("t1"), mapping={"status": "processing", "attempt": "1"})
    job_id = await enqueue_attempt(pool, keys, "t1")
    await run_popped(worker, job_id)
    assert calls.calls == [("t1", 1, {"status": "processing", "attempt": "1"}, 1)]
    assert await arq_keys(redis, keys, job_id) == NONE_LEFT  # arq's finish_job ran
    assert (worker.jobs_complete, worker.jobs_failed, worker.job_counter) == (1, 0, 0)
    gone = await enqueue_attempt(pool, keys, "t2")  # its task hash is gone: an empty one, not None
    await run_popped(worker, gone)
    assert calls.calls[-1] == ("t2", 1, {}, 1)


async def test_a_job_tried_before_is_not_run_again_and_is_finished(pool, keys, scripts, redis):
    calls = Calls()
    worker = worker_for(pool, keys, scripts, calls)
    job_id = await enqueue_attempt(pool, keys, "t1")
    await redis.set("arq:retry:" + job_id, 1)  # its earlier run died mid-way
    await run_popped(worker, job_id)
    assert calls.calls == []
    assert await arq_keys(redis, keys, job_id) == NONE_LEFT
    assert (worker.jobs_failed, worker.job_counter) == (1, 0)


async def test_an_expired_job_is_dropped_and_leaves_the_queue(pool, keys, scripts, redis):
    calls = Calls()
    worker = worker_for(pool, keys, scripts, calls)
    job_id = await enqueue_attempt(pool, keys, "t1")
    await redis.delete("arq:job:" + job_id)
    await run_popped(worker, job_id)
    assert calls.calls == []
    assert await arq_keys(redis, keys, job_id) == NONE_LEFT
    assert (worker.jobs_failed, worker.job_counter) == (1, 0)


async def test_a_cancelled_job_stays_queued_and_is_not_run_again(pool, keys, scripts, redis):
    calls = Calls(block=True)
    worker = worker_for(pool, keys, scripts, calls)
    job_id = await enqueue_attempt(pool, keys, "t1")
    await worker.start_jobs([job_id.encode()])
    await until(lambda: calls.calls)
    worker.tasks[job_id].cancel()  # as the worker's shutdown does
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    assert calls.cancelled == 1 and worker.jobs_retried == 1 and worker.job_counter == 0
    left = await arq_keys(redis, keys, job_id)
    assert left == {"arq:job:": True, "arq:in-progress:": False, "arq:retry:": True, "queued": True}
    await worker._poll_iteration()  # arq's scan finds it: a second try, which max_tries=1 refuses
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    assert len(calls.calls) == 1 and worker.jobs_failed == 1
    assert await arq_keys(redis, keys, job_id) == NONE_LEFT


async def test_the_job_timeout_cancels_the_job_and_finishes_it(pool, keys, scripts, redis):
    calls = Calls(block=True)
    worker = worker_for(pool, keys, scripts, calls, job_timeout=0.05)
    job_id = await enqueue_attempt(pool, keys, "t1")
    await run_popped(worker, job_id)
    assert calls.cancelled == 1 and worker.jobs_failed == 1 and worker.job_counter == 0
    assert await arq_keys(redis, keys, job_id) == NONE_LEFT


async def test_arq_scan_starts_a_job_left_behind_the_same_way(pool, keys, scripts, redis):
    calls = Calls()
    worker = worker_for(pool, keys, scripts, calls)
    job_id = await enqueue_attempt(pool, keys, "t1")  # queued, never popped
    await worker._poll_iteration()
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    assert calls.calls == [("t1", 1, {}, 1)]
    assert await arq_keys(redis, keys, job_id) == NONE_LEFT


async def test_other_jobs_run_by_arq_with_their_try_counted_once(pool, keys, scripts, redis):
    """A run_task job whose arguments are not its id's attempt, and a job with unreadable data,
    go to arq's run_job: the first runs once (a second count would exceed max_tries=1) reading its
    own task, the second is failed by arq."""
    calls = Calls()
    worker = worker_for(pool, keys, scripts, calls)
    odd = keys.arq_job_id("t1", 1)
    await pool.enqueue_job("run_task", "t2", 1, _job_id=odd)
    bad = await enqueue_attempt(pool, keys, "t3")
    await redis.set("arq:job:" + bad, b"not json")
    await run_popped(worker, odd, bad)
    assert calls.calls == [("t2", 1, None, 1)]
    assert await arq_keys(redis, keys, odd) == NONE_LEFT
    assert await arq_keys(redis, keys, bad) == NONE_LEFT
    assert (worker.jobs_complete, worker.jobs_failed, worker.job_counter) == (1, 1, 0)


# --- the real run_task and TaskRunner ------------------------------------------------------------
async def test_a_popped_job_submits_from_the_claimed_task_without_reading_it(
    pool, keys, scripts, redis, settings
):
    s = fast_settings(settings)
    upstream = HeldUpstream()
    services = assemble(s, redis)
    worker = build_worker(s, services, {"sim": upstream})
    worker._pool = pool
    runner = worker.ctx["runner"]

    async def no_read(task_id: str) -> None:
        raise AssertionError("the claim read the task: no HGETALL here")

    services.tasks.load = no_read  # type: ignore[method-assign]
    _, [kept, gone] = await dispatched(redis, scripts, keys, s, 2)
    await redis.delete(keys.task(gone))
    try:
        await run_popped(worker, keys.arq_job_id(kept, 1), keys.arq_job_id(gone, 1))
        assert upstream.submitted == [kept]  # the gone task was skipped as stale, never submitted
        assert runner.watcher.inflight == 1
        assert (worker.jobs_complete, worker.jobs_failed) == (2, 0)
        for task_id in (kept, gone):
            assert await arq_keys(redis, keys, keys.arq_job_id(task_id, 1)) == NONE_LEFT
    finally:
        await runner.watcher.hand_back_all()


async def test_shutdown_cancels_a_submitting_job_which_hands_its_attempt_back(
    pool, keys, scripts, redis, settings
):
    s = fast_settings(settings)
    upstream = HeldUpstream()
    entered = asyncio.Event()

    async def stuck_submit(access: Any, request: Any) -> str:
        entered.set()
        await asyncio.sleep(3600)
        raise AssertionError("never submitted")

    upstream.submit = stuck_submit  # type: ignore[method-assign]
    services = assemble(s, redis)
    worker = build_worker(s, services, {"sim": upstream})
    worker._pool = pool
    _, [task_id] = await dispatched(redis, scripts, keys, s, 1)
    job_id = keys.arq_job_id(task_id, 1)
    await worker.start_jobs([job_id.encode()])
    await asyncio.wait_for(entered.wait(), 10)
    main = asyncio.create_task(asyncio.sleep(3600))  # stands in for the worker's loop
    await _shutdown(worker, main, 0.0)
    t = await task_fields(redis, keys, task_id)
    assert t["status"] == "pending"  # handed back: the next dispatch makes attempt 2
    assert worker.jobs_retried == 1 and worker.job_counter == 0
    left = await arq_keys(redis, keys, job_id)
    assert left == {"arq:job:": True, "arq:in-progress:": False, "arq:retry:": True, "queued": True}
