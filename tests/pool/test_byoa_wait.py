"""S6: a BYOA task that no own account can run, without failover, waits at most byoa_max_wait_ms."""

from __future__ import annotations

import json

from taskgate.providers.base import ErrorKind
from taskgate.scheduler.dispatcher import Dispatcher
from tests.factories import enqueue, make_account, make_user, task_fields, wallet
from tests.lua.test_task_lifecycle import finish
from tests.pool.conftest import T0


async def test_byoa_without_failover_fails_after_the_maximum_wait(redis, scripts, keys, settings, health):
    u = await make_user(redis, scripts, keys, plan="developer", failover=False, wallets={"mj_quota": 100})
    acc = await make_account(scripts, keys, owner=u)
    await health.report(acc, ErrorKind.BANNED, now_ms=T0)
    task_id = await enqueue(scripts, keys, u, pool="byoa", lane="relax", now=T0)
    d = Dispatcher(redis, scripts, keys, settings)
    assert await d.dispatch(now_ms=T0) == []
    limit = settings.byoa_max_wait_ms
    assert await health.sweep(now_ms=T0 + limit - 1) == (0, 0)
    assert (await task_fields(redis, keys, task_id))["status"] == "pending"
    assert await health.sweep(now_ms=T0 + limit) == (0, 1)
    t = await task_fields(redis, keys, task_id)
    error = json.loads(t["error"])
    assert t["status"] == "failed" and error["code"] == 503
    assert "none of your accounts" in error["message"] and "failover" in error["message"]
    assert await redis.llen(keys.flow(t["flow"])) == 0
    assert await redis.zcard(keys.byoa_waiting()) == 0
    assert await redis.zscore(keys.relax_waiting(), task_id) is None  # S3 bookkeeping is gone too
    w = await wallet(redis, keys, u, "mj_quota")  # BYOA froze nothing: nothing moves
    assert (w["available"], w["frozen"], w["consumed"]) == (100, 0, 0)
    assert await health.sweep(now_ms=T0 + 2 * limit) == (0, 0)  # once only
    assert (await task_fields(redis, keys, task_id))["error"] == t["error"]


async def test_a_pinned_task_fails_when_its_account_is_gone(redis, scripts, keys, settings, health):
    u = await make_user(redis, scripts, keys, plan="developer", failover=True)
    pinned = await make_account(scripts, keys, owner=u)
    await make_account(scripts, keys, owner=u)  # another healthy account does not help a pinned task
    await health.report(pinned, ErrorKind.CAPTCHA, now_ms=T0)
    task_id = await enqueue(scripts, keys, u, pool="byoa", bot=pinned, now=T0)
    assert await Dispatcher(redis, scripts, keys, settings).dispatch(now_ms=T0) == []
    assert await health.sweep(now_ms=T0 + settings.byoa_max_wait_ms) == (0, 1)
    message = json.loads((await task_fields(redis, keys, task_id))["error"])["message"]
    assert f"your account {pinned} could not run this task" in message


async def test_a_task_behind_a_busy_healthy_account_keeps_waiting(redis, scripts, keys, settings, health):
    u = await make_user(redis, scripts, keys, plan="developer")
    await make_account(scripts, keys, owner=u, capacity=1)
    first = await enqueue(scripts, keys, u, pool="byoa", now=T0)
    second = await enqueue(scripts, keys, u, pool="byoa", now=T0)
    d = Dispatcher(redis, scripts, keys, settings)
    assert [x.task_id for x in await d.dispatch(now_ms=T0)] == [first]
    limit = settings.byoa_max_wait_ms
    assert await health.sweep(now_ms=T0 + 3 * limit) == (0, 0)
    assert (await task_fields(redis, keys, second))["status"] == "pending"
    await finish(scripts, keys, first, 1, "completed", now=T0 + 3 * limit + 1)
    assert [x.task_id for x in await d.dispatch(now_ms=T0 + 3 * limit + 2)] == [second]


async def test_with_failover_a_task_waits_for_the_shared_pool(redis, scripts, keys, settings, health):
    u = await make_user(redis, scripts, keys, plan="developer", failover=True)
    task_id = await enqueue(scripts, keys, u, pool="byoa", now=T0)  # no accounts at all yet
    assert await Dispatcher(redis, scripts, keys, settings).dispatch(now_ms=T0) == []
    assert await health.sweep(now_ms=T0 + 2 * settings.byoa_max_wait_ms) == (0, 0)
    assert (await task_fields(redis, keys, task_id))["status"] == "pending"


async def test_the_wait_counts_from_the_last_run(redis, scripts, keys, settings, health):
    u = await make_user(redis, scripts, keys, plan="developer")
    acc = await make_account(scripts, keys, owner=u)
    task_id = await enqueue(scripts, keys, u, pool="byoa", now=T0)
    d = Dispatcher(redis, scripts, keys, settings)
    limit = settings.byoa_max_wait_ms
    dispatched, requeued = T0 + limit - 100, T0 + limit + 50
    assert [x.task_id for x in await d.dispatch(now_ms=dispatched)] == [task_id]
    assert await health.sweep(now_ms=T0 + limit) == (0, 0)  # it runs: looked at again later
    await health.report(acc, ErrorKind.BANNED, now_ms=requeued)
    await finish(scripts, keys, task_id, 1, "retry", blame=True, now=requeued)
    assert await health.sweep(now_ms=dispatched + limit - 1) == (0, 0)  # not counted from creation
    assert (await task_fields(redis, keys, task_id))["status"] == "pending"
    assert await health.sweep(now_ms=requeued + limit) == (0, 1)
    assert (await task_fields(redis, keys, task_id))["status"] == "failed"


async def test_entries_of_finished_or_failed_over_tasks_are_dropped(redis, scripts, keys, settings, health):
    u = await make_user(redis, scripts, keys, plan="developer", failover=True, wallets={"mj_quota": 100})
    await make_account(scripts, keys, capacity=5)  # shared
    moved = await enqueue(scripts, keys, u, pool="byoa", ppu_price=14, now=T0)
    [x] = await Dispatcher(redis, scripts, keys, settings).dispatch(now_ms=T0)
    assert x.task_id == moved and (await task_fields(redis, keys, moved))["pool"] == "ppu"
    await finish(scripts, keys, moved, 1, "retry", now=T0 + 1)  # pending again, but a PPU task now
    assert await health.sweep(now_ms=T0 + settings.byoa_max_wait_ms) == (0, 0)
    assert await redis.zcard(keys.byoa_waiting()) == 0
