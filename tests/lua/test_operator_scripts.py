"""read_cluster (the /metrics and dashboard snapshot), requeue_task and redeliver_webhook against a
real Redis: exact figures, parked queues, clock override, fencing after a requeue, concurrent
requeues, refusals that change nothing."""

from __future__ import annotations

import asyncio

import pytest

from taskgate.errors import Conflict, NotFound, StaleAttempt
from taskgate.metrics.cluster import read_cluster
from taskgate.scheduler.dispatcher import Dispatcher
from taskgate.store.keys import flow_id
from tests.factories import enqueue, make_account, make_user, task_fields, wallet
from tests.lua.test_task_lifecycle import finish

T0 = 1_800_000_000_000


async def requeue(scripts, keys, task_id, now=""):
    return await scripts.call("requeue_task", keys=[keys.task(task_id)], args=[keys.base, now, task_id])


async def test_read_cluster_counts_tasks_not_flows(redis, scripts, keys, settings):
    free = await make_user(redis, scripts, keys, plan="free", wallets={"mj_quota": 1000})
    dev = await make_user(redis, scripts, keys, plan="developer", wallets={"mj_quota": 1000})
    account = await make_account(scripts, keys, capacity=10)
    for i in range(5):  # the free user (cap 3) gets 3 running and 2 parked on its cap
        await enqueue(scripts, keys, free, price=10, now=T0 + i)
    await Dispatcher(redis, scripts, keys, settings).dispatch(now_ms=T0 + 10)
    for i in range(4):
        await enqueue(scripts, keys, dev, lane="relax", price=7, now=T0 + 100 + i)
    await enqueue(scripts, keys, dev, lane="turbo", pool="byoa", price=0, now=T0 + 200)

    snap = await read_cluster(scripts, keys, now_ms=T0 + 5_000)
    assert snap.pending == {
        ("fast", "ppu", "free"): 2,
        ("relax", "ppu", "developer"): 4,
        ("turbo", "byoa", "developer"): 1,
    }
    assert snap.oldest_created_ms == {"fast": T0 + 3, "relax": T0 + 100, "turbo": T0 + 200}
    assert snap.oldest_age_s("fast") == pytest.approx(4.997) and snap.oldest_age_s("relax") == pytest.approx(
        4.9
    )
    assert snap.running == {("free", "ppu"): 3}
    [acc] = snap.accounts
    assert (acc["id"], acc["running"], acc["capacity"], acc["state"]) == (account, 3, 10, "active")
    assert snap.frozen == {"mj_quota": 5 * 10 + 4 * 7}
    assert snap.webhook_backlog == 0 and snap.webhook_oldest_age_s() == 0


async def test_read_cluster_of_an_empty_deployment(scripts, keys):
    snap = await read_cluster(scripts, keys, now_ms=T0)
    assert (snap.pending, snap.running, snap.accounts, snap.frozen, snap.webhook_backlog) == (
        {},
        {},
        [],
        {},
        0,
    )
    assert snap.to_api()["lanes"]["fast"] == {"pending": 0, "oldest_age_s": 0.0}


async def test_read_cluster_webhook_backlog(redis, scripts, keys):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    task_id = await enqueue(scripts, keys, user, price=1, webhook="http://127.0.0.1:9/hook")
    await scripts.call("redeliver_webhook", keys=[keys.task(task_id)], args=[keys.base, T0, task_id])
    snap = await read_cluster(scripts, keys, now_ms=T0 + 2_500)
    assert snap.webhook_backlog == 1 and snap.webhook_oldest_age_s() == 2.5


async def test_requeue_processing_releases_slots_fences_old_attempt_and_charges_once(
    redis, scripts, keys, settings
):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    account = await make_account(scripts, keys, capacity=1)
    task_id = await enqueue(scripts, keys, user, price=14)
    dispatcher = Dispatcher(redis, scripts, keys, settings)
    [d] = await dispatcher.dispatch()
    assert await redis.zcard(keys.account_leases(account)) == 1
    assert (await requeue(scripts, keys, task_id)) == [0, "processing"]
    t = await task_fields(redis, keys, task_id)
    assert t["status"] == "pending" and await redis.zcard(keys.account_leases(account)) == 0
    assert await redis.zscore(keys.leases(), task_id) is None
    with pytest.raises(StaleAttempt):
        await finish(scripts, keys, task_id, d.attempt, "completed")  # the old worker is fenced off
    [again] = await dispatcher.dispatch()
    assert again.attempt == d.attempt + 1
    assert (await finish(scripts, keys, task_id, again.attempt, "completed"))[1] == "completed"
    w = await wallet(redis, keys, user, "mj_quota")
    assert (w["available"], w["frozen"], w["consumed"]) == (86, 0, 14)


async def test_concurrent_requeues_queue_the_task_once(redis, scripts, keys, settings):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    await make_account(scripts, keys, capacity=1)
    task_id = await enqueue(scripts, keys, user, price=14)
    await Dispatcher(redis, scripts, keys, settings).dispatch()
    results = await asyncio.gather(*(requeue(scripts, keys, task_id) for _ in range(20)))
    assert sorted(r[1] for r in results) == ["pending"] * 19 + ["processing"]
    flow = keys.flow(flow_id("fast", "ppu", user, "midjourney"))
    assert await redis.lrange(flow, 0, -1) == [task_id.encode()]


async def test_requeue_and_redeliver_refuse_and_change_nothing(redis, scripts, keys, settings):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    await make_account(scripts, keys, capacity=1)
    task_id = await enqueue(scripts, keys, user, price=14)  # no webhook endpoint
    [d] = await Dispatcher(redis, scripts, keys, settings).dispatch()
    await finish(scripts, keys, task_id, d.attempt, "completed")
    before = await task_fields(redis, keys, task_id)
    with pytest.raises(Conflict):
        await requeue(scripts, keys, task_id)
    with pytest.raises(Conflict):
        await scripts.call("redeliver_webhook", keys=[keys.task(task_id)], args=[keys.base, "", task_id])
    with pytest.raises(NotFound):
        await requeue(scripts, keys, "no-such-task")
    assert await task_fields(redis, keys, task_id) == before
    assert await redis.zcard(keys.webhook_outbox()) == 0


async def test_read_cluster_merges_chunks_exactly(redis, scripts, keys, monkeypatch):
    users = [
        await make_user(redis, scripts, keys, plan=p, wallets={"mj_quota": 100, "credits": 50})
        for p in ("free", "developer", "premium", "free", "developer")
    ]
    for i, user in enumerate(users):
        for j in range(i + 1):
            await enqueue(scripts, keys, user, lane=("fast", "relax")[j % 2], price=2, now=T0 + 10 * i + j)
    whole = await read_cluster(scripts, keys, now_ms=T0 + 1000)
    monkeypatch.setattr("taskgate.metrics.cluster.CHUNK", 2)
    chunked = await read_cluster(scripts, keys, now_ms=T0 + 1000)
    assert chunked == whole
    assert sum(whole.pending.values()) == 15 and whole.frozen == {"mj_quota": 30}
    assert whole.oldest_created_ms == {"fast": T0, "relax": T0 + 11}
