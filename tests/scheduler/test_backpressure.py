"""Dispatch outpacing the workers (issue 15): dispatch stops while ``dispatch_max_queued`` jobs wait
for a worker (back-pressure), and the reaper extends the lease of an attempt whose arq job no worker
has started (no in-progress key, nothing submitted) instead of counting it lost. Busy workers never
fail a task nor burn its attempts; an attempt a worker did start still loses its lease as before."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from taskgate.models import CreateTaskRequest
from taskgate.pool.registry import AccountSpec
from taskgate.scheduler.dispatcher import Dispatcher
from taskgate.scheduler.runner import run_scheduler
from taskgate.services import build_services
from taskgate.settings import Settings
from taskgate.sim.server import create_sim_app
from taskgate.store.keys import ARQ_IN_PROGRESS_KEY_PREFIX
from taskgate.worker.leases import LeaseKeeper
from taskgate.worker.runner import run_worker
from tests.factories import enqueue, make_account, make_user, task_fields
from tests.redis_server import free_port
from tests.worker.stack import serve

T0 = 1_700_000_000_000
WAIT_S = 60.0


async def until(predicate: Callable[[], Any], timeout_s: float = WAIT_S) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def queued_tasks(redis, scripts, keys, n):
    user = await make_user(redis, scripts, keys, plan="premium", cap=1000, wallets={"mj_quota": 10_000})
    await make_account(scripts, keys, capacity=1000)
    return [await enqueue(scripts, keys, user, price=1) for _ in range(n)]


# --- the Lua scripts


async def test_dispatch_stops_while_max_queued_jobs_wait_for_a_worker(redis, scripts, keys, settings):
    await queued_tasks(redis, scripts, keys, 10)
    d = Dispatcher(redis, scripts, keys, settings.model_copy(update={"dispatch_max_queued": 4}))
    assert len(await d.dispatch(now_ms=T0)) == 4
    assert await d.dispatch(now_ms=T0 + 1) == []  # 4 jobs wait: nothing more is booked
    assert await redis.llen(keys.worker_jobs()) == 4
    await redis.lpop(keys.worker_jobs(), 3)  # a worker took three
    assert len(await d.dispatch(now_ms=T0 + 2)) == 3
    pending = [t for t in await redis.keys(keys.task("*")) if (await redis.hget(t, "status")) == b"pending"]
    assert len(pending) == 3  # the rest waits unbooked (no slot, no lease)


async def test_no_bound_when_max_queued_is_zero(redis, scripts, keys, settings):
    await queued_tasks(redis, scripts, keys, 10)
    d = Dispatcher(redis, scripts, keys, settings.model_copy(update={"dispatch_max_queued": 0}))
    assert len(await d.dispatch(now_ms=T0)) == 10


async def test_an_unstarted_job_keeps_its_attempt_and_its_lease_is_extended(redis, scripts, keys, settings):
    [task_id] = await queued_tasks(redis, scripts, keys, 1)
    d = Dispatcher(redis, scripts, keys, settings.model_copy(update={"max_attempts": 1}))
    [first] = await d.dispatch(now_ms=T0)
    late = T0 + 10 * settings.lease_ms
    assert await d.reap(now_ms=late) == [(task_id, "queued")]  # with max_attempts 1: not failed
    t = await task_fields(redis, keys, task_id)
    assert (t["status"], t["attempt"], t["account"]) == ("processing", "1", first.account_id)
    deadline = late + settings.lease_ms
    assert int(t["lease_deadline"]) == deadline
    assert await redis.zscore(keys.leases(), task_id) == deadline
    assert await redis.zscore(keys.account_leases(first.account_id), task_id) == deadline
    assert await d.reap(now_ms=late + 1) == []  # not expired any more


async def test_a_started_job_still_loses_its_lease(redis, scripts, keys, settings):
    [task_id] = await queued_tasks(redis, scripts, keys, 1)
    d = Dispatcher(redis, scripts, keys, settings)
    await d.dispatch(now_ms=T0)
    await redis.set(ARQ_IN_PROGRESS_KEY_PREFIX + keys.arq_job_id(task_id, 1), "1")  # arq started it
    assert await d.reap(now_ms=T0 + 2 * settings.lease_ms) == [(task_id, "pending")]
    assert (await task_fields(redis, keys, task_id))["status"] == "pending"


async def test_a_job_gone_from_the_queue_or_already_submitted_loses_its_lease(redis, scripts, keys, settings):
    gone, submitted = await queued_tasks(redis, scripts, keys, 2)
    d = Dispatcher(redis, scripts, keys, settings)
    await d.dispatch(now_ms=T0)
    await redis.zrem(keys.arq_queue(), keys.arq_job_id(gone, 1))  # arq finished (or dropped) the job
    await redis.hset(keys.task(submitted), "upstream_id", "up-1")  # the job submitted, then its worker died
    reaped = dict(await d.reap(now_ms=T0 + 2 * settings.lease_ms))
    assert reaped == {gone: "pending", submitted: "pending"}


async def test_a_lease_is_renewed_at_pickup_not_one_period_later(redis, scripts, keys, settings):
    a, b = await queued_tasks(redis, scripts, keys, 2)
    d = Dispatcher(redis, scripts, keys, settings)
    await d.dispatch(now_ms=1000)  # booked long ago: the lease is about to be reaped when picked up
    keeper = LeaseKeeper(scripts, keys, settings.model_copy(update={"renew_interval_s": 3600.0}))
    held = [keeper.hold(a, 1), keeper.hold(b, 2)]  # b: a stale job of an older attempt

    async def renewed() -> bool:
        return keeper.stats.picked == 1

    await until(renewed, 10)
    assert keeper.stats.pickup_calls == 1 and keeper.stats.calls == 0  # one call for the burst
    now_ms = int(float((await redis.time())[0]) * 1000)
    assert (await redis.zscore(keys.leases(), a)) > now_ms + settings.lease_ms // 2
    assert held[1].lost and set(keeper.held) == {a}
    keeper.release(held[0])


# --- the real scheduler and worker: dispatch far ahead of the workers


async def test_tasks_waiting_for_a_late_worker_all_complete_on_their_first_attempt(settings: Settings):
    s = settings.model_copy(
        update={
            "sim_port": free_port(),
            "sim_latency_fast_s": 0.2,
            "lease_ms": 3000,
            "renew_interval_s": 0.2,
            "sweep_interval_s": 0.1,
            "max_attempts": 2,
            "dispatch_max_queued": 30,
            "worker_max_jobs": 2,
        }
    )
    sim = await serve(create_sim_app(s), s.sim_port)
    services = await build_services(s)
    stop = asyncio.Event()
    roles = [asyncio.create_task(run_scheduler(s, stop))]
    try:
        await services.accounts.add(
            AccountSpec(
                owner="shared",
                provider="sim",
                base_url=f"http://127.0.0.1:{s.sim_port}",
                api_key=SecretStr("bp-test"),
                capacity=100,
            )
        )
        user_id, _ = await services.users.create("enterprise", wallets={"mj_quota": 10_000})
        user = await services.users.get(user_id)
        req = CreateTaskRequest(model="midjourney", task_type="imagine", input={"prompt": "a fox"})
        ids = [str((await services.tasks.create(user, req))["task_id"]) for _ in range(50)]

        async def tasks() -> list[dict[str, str]]:
            return [await task_fields(services.redis, services.keys, i) for i in ids]

        async def leases_outlived() -> bool:  # every booked attempt's lease ran out twice, no worker yet
            booked = [t for t in await tasks() if t["status"] == "processing"]
            return len(booked) == 30 and all(
                int(t["lease_deadline"]) - int(t["dispatched_ms"]) >= 3 * s.lease_ms for t in booked
            )

        await until(leases_outlived)
        assert await services.redis.llen(services.keys.worker_jobs()) == 30  # the bound held
        roles.append(asyncio.create_task(run_worker(s, stop)))

        async def all_done() -> bool:
            return all(t["status"] in ("completed", "failed") for t in await tasks())

        await until(all_done)
        final = await tasks()
        assert [t["status"] for t in final] == ["completed"] * 50, {t.get("error") for t in final}
        assert {t["attempt"] for t in final} == {"1"}  # waiting for a worker burnt no attempt
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*roles), 30)
        await sim.cleanup()
        await services.close()
