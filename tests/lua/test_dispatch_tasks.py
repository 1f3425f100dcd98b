"""dispatch_tasks.lua: caps (S1), account capacity (S2), priority (S3), rotation (S4), no
head-of-line blocking (S5), selection tiers (S8), failover (S6), and the arq job it writes."""

from __future__ import annotations

import json
from collections import Counter

from taskgate.scheduler.dispatcher import Dispatcher
from tests.factories import enqueue, make_account, make_user, task_fields, wallet


async def field_of(redis, keys, dispatches, name):
    return [(await task_fields(redis, keys, d.task_id))[name] for d in dispatches]


def dispatcher(redis, scripts, keys, settings, **changes):
    return Dispatcher(redis, scripts, keys, settings.model_copy(update=changes))


async def test_dispatch_books_slots_and_writes_arq_job(redis, scripts, keys, settings):
    user = await make_user(redis, scripts, keys)
    acc = await make_account(scripts, keys, capacity=2)
    task_id = await enqueue(scripts, keys, user)
    [d] = await dispatcher(redis, scripts, keys, settings).dispatch()
    assert (d.task_id, d.attempt, d.account_id) == (task_id, 1, acc)
    t = await task_fields(redis, keys, task_id)
    assert t["status"] == "processing" and t["attempt"] == "1" and t["account"] == acc
    assert await redis.zscore(keys.user_leases(user), task_id) is not None
    assert await redis.zscore(keys.account_leases(acc), task_id) is not None
    job = json.loads(await redis.get(keys.arq_job(task_id, 1)))
    assert job["f"] == "run_task" and job["a"] == [task_id, 1] and job["t"] == 1
    job_id = keys.arq_job_id(task_id, 1)
    assert job_id.startswith(keys.base + ":")  # arq's keys for this job share the hash tag
    assert await redis.zscore(keys.arq_queue(), job_id) is not None
    assert await redis.lrange(keys.worker_jobs(), 0, -1) == [job_id.encode()]
    # nothing left: a second round dispatches nothing and the same attempt is never booked twice
    assert await dispatcher(redis, scripts, keys, settings).dispatch() == []


async def test_s1_plan_cap_and_no_head_of_line_blocking(redis, scripts, keys, settings):
    capped = await make_user(redis, scripts, keys, plan="free")
    other = await make_user(redis, scripts, keys, plan="free")
    await make_account(scripts, keys, capacity=50)
    for _ in range(10):
        await enqueue(scripts, keys, capped)
    later = [await enqueue(scripts, keys, other) for _ in range(2)]
    out = await dispatcher(redis, scripts, keys, settings).dispatch(50)
    per_user = Counter(await field_of(redis, keys, out, "user"))
    assert per_user == {capped: 3, other: 2}
    assert {d.task_id for d in out} >= set(later)
    assert await redis.zcard(keys.user_leases(capped)) == 3


async def test_s2_account_capacity_total_and_per_mode(redis, scripts, keys, settings):
    users = [await make_user(redis, scripts, keys, plan="premium") for _ in range(3)]
    acc = await make_account(scripts, keys, capacity=4, cap_relax=1)
    for u in users:
        for lane in ("relax", "relax", "fast", "fast"):
            await enqueue(scripts, keys, u, lane=lane)
    out = await dispatcher(redis, scripts, keys, settings).dispatch(50)
    assert len(out) == 4
    lanes = Counter(await field_of(redis, keys, out, "lane"))
    assert lanes["relax"] <= 1
    assert await redis.zcard(keys.account_leases(acc)) == 4


async def test_s4_rotation_light_user_served_within_one_turn_per_user(redis, scripts, keys, settings):
    heavy = await make_user(redis, scripts, keys, plan="premium")
    await make_account(scripts, keys, capacity=10_000)
    d = dispatcher(redis, scripts, keys, settings)
    for _ in range(300):
        await enqueue(scripts, keys, heavy)
    await d.dispatch(5)  # the heavy user is being served
    lights = [await make_user(redis, scripts, keys, plan="premium", cap=1000) for _ in range(20)]
    await redis.hset(keys.user(heavy), "cap", 1000)
    first = {u: await enqueue(scripts, keys, u) for u in lights}
    out = await d.dispatch(21)
    served = {x.task_id for x in out}
    assert set(first.values()) <= served


async def test_s4_weights_share_dispatches(redis, scripts, keys, settings):
    a = await make_user(redis, scripts, keys, plan="premium", weight=1, cap=10_000)
    b = await make_user(redis, scripts, keys, plan="premium", weight=3, cap=10_000)
    await make_account(scripts, keys, capacity=10_000)
    for _ in range(400):
        await enqueue(scripts, keys, a)
        await enqueue(scripts, keys, b)
    out = await dispatcher(redis, scripts, keys, settings).dispatch(400)
    users = Counter(await field_of(redis, keys, out, "user"))
    assert abs(users[b] / 400 - 0.75) <= 0.02


async def test_s3_priority_and_relax_floor(redis, scripts, keys, settings):
    u = await make_user(redis, scripts, keys, plan="premium", cap=10_000)
    await make_account(scripts, keys, capacity=10_000)
    for lane in ("relax", "fast", "turbo"):
        for _ in range(300):
            await enqueue(scripts, keys, u, lane=lane)
    out = await dispatcher(redis, scripts, keys, settings, relax_share=0.10).dispatch(400)
    lanes = await field_of(redis, keys, out, "lane")
    first_300_non_relax = [x for x in lanes if x != "relax"][:300]
    assert first_300_non_relax == ["turbo"] * 300  # turbo before fast
    assert abs(lanes.count("relax") / len(lanes) - 0.10) <= 0.02


async def test_s3_relax_max_wait(redis, scripts, keys, settings):
    u = await make_user(redis, scripts, keys, plan="premium", cap=10_000)
    await make_account(scripts, keys, capacity=10_000)
    t0 = 1_800_000_000_000
    old = await enqueue(scripts, keys, u, lane="relax", now=t0)
    for _ in range(50):
        await enqueue(scripts, keys, u, lane="fast", now=t0)
    d = dispatcher(redis, scripts, keys, settings, relax_share=0.0, relax_max_wait_ms=60_000)
    early = await d.dispatch(5, now_ms=t0 + 1000)
    assert old not in {x.task_id for x in early}
    late = await d.dispatch(1, now_ms=t0 + 61_000)
    assert [x.task_id for x in late] == [old]


async def test_s8_tiers_priority_and_backup(redis, scripts, keys, settings):
    u = await make_user(redis, scripts, keys, plan="premium")
    low = await make_account(scripts, keys, owner=u, capacity=1, priority=1)
    high = await make_account(scripts, keys, owner=u, capacity=1, priority=5)
    backup = await make_account(scripts, keys, owner=u, capacity=5, backup=True, priority=9)
    await make_account(scripts, keys, owner="shared", capacity=5)
    ids = [await enqueue(scripts, keys, u, pool="byoa") for _ in range(4)]
    out = await dispatcher(redis, scripts, keys, settings).dispatch(10)
    assert [x.account_id for x in out] == [high, low, backup, backup]
    assert [x.task_id for x in out] == ids


async def test_s6_failover_to_shared_pool_priced_as_ppu(redis, scripts, keys, settings):
    u = await make_user(redis, scripts, keys, plan="developer", failover=True, wallets={"mj_quota": 100})
    shared = await make_account(scripts, keys, owner="shared", capacity=5)
    task_id = await enqueue(scripts, keys, u, pool="byoa", ppu_price=14)
    [d] = await dispatcher(redis, scripts, keys, settings).dispatch(5)
    assert d.account_id == shared
    t = await task_fields(redis, keys, task_id)
    assert t["pool"] == "ppu" and t["frozen"] == "14" and t["failover"] == "1"
    assert (await wallet(redis, keys, u, "mj_quota"))["frozen"] == 14
    assert await redis.zscore(keys.user_leases(u), task_id) is not None


async def test_s6_no_failover_waits_and_failover_without_credits_fails(redis, scripts, keys, settings):
    waiting = await make_user(redis, scripts, keys, plan="developer", failover=False)
    poor = await make_user(redis, scripts, keys, plan="developer", failover=True, wallets={"mj_quota": 5})
    await make_account(scripts, keys, owner="shared", capacity=5)
    w = await enqueue(scripts, keys, waiting, pool="byoa", ppu_price=14)
    p = await enqueue(scripts, keys, poor, pool="byoa", ppu_price=14)
    assert await dispatcher(redis, scripts, keys, settings).dispatch(5) == []
    assert (await task_fields(redis, keys, w))["status"] == "pending"
    failed = await task_fields(redis, keys, p)
    assert failed["status"] == "failed" and "needs 14 mj_quota" in json.loads(failed["error"])["message"]
    assert await wallet(redis, keys, poor, "mj_quota") == {
        "available": 5,
        "frozen": 0,
        "consumed": 0,
        "deposited": 5,
        "converted_in": 0,
        "converted_out": 0,
    }


async def test_parked_flow_wakes_when_account_added(redis, scripts, keys, settings):
    u = await make_user(redis, scripts, keys)
    task_id = await enqueue(scripts, keys, u)
    d = dispatcher(redis, scripts, keys, settings)
    assert await d.dispatch() == []
    await make_account(scripts, keys, capacity=1)
    assert [x.task_id for x in await d.dispatch()] == [task_id]


async def test_bot_id_pins_account(redis, scripts, keys, settings):
    u = await make_user(redis, scripts, keys, plan="premium")
    await make_account(scripts, keys, owner=u, capacity=5, priority=9)
    pinned = await make_account(scripts, keys, owner=u, capacity=5)
    task_id = await enqueue(scripts, keys, u, pool="byoa", bot=pinned)
    [d] = await dispatcher(redis, scripts, keys, settings).dispatch()
    assert (d.task_id, d.account_id) == (task_id, pinned)


async def test_s6_busy_own_accounts_wait_but_unusable_ones_fail_over(redis, scripts, keys, settings):
    u = await make_user(redis, scripts, keys, plan="developer", failover=True, wallets={"mj_quota": 100})
    own = await make_account(scripts, keys, owner=u, capacity=1)
    shared = await make_account(scripts, keys, owner="shared", capacity=5)
    d = dispatcher(redis, scripts, keys, settings)
    first = await enqueue(scripts, keys, u, pool="byoa", ppu_price=14)
    second = await enqueue(scripts, keys, u, pool="byoa", ppu_price=14)
    out = await d.dispatch(5)
    assert [(x.task_id, x.account_id) for x in out] == [(first, own)]  # busy, not gone: second waits
    assert (await task_fields(redis, keys, second))["pool"] == "byoa"
    # the own account is banned: the waiting task is woken and fails over to the shared pool
    await scripts.call(
        "set_account_state",
        keys=[keys.account(own)],
        args=[keys.base, "", own, "banned", 0, "health", "banned upstream"],
    )
    [moved] = await d.dispatch(5)
    assert (moved.task_id, moved.account_id) == (second, shared)
    assert (await task_fields(redis, keys, second))["pool"] == "ppu"
