"""create_task.lua: freeze + queue in one step (B1, B5, B6, B7), idempotency, refusal changes nothing."""

from __future__ import annotations

import pytest

from taskgate.errors import IncorrectTaskLimit, InsufficientCredits
from tests.factories import enqueue, make_user, task_fields, wallet

DAY_MS = 86_400_000
T0 = 1_800_000_000_000  # a fixed clock, mid-day UTC


async def snapshot(redis, keys):
    out = {}
    async for key in redis.scan_iter(match=keys.pattern()):
        out[key] = await redis.dump(key)
    return out


async def test_freeze_and_queue(redis, scripts, keys):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    task_id = await enqueue(scripts, keys, user, price=14)
    t = await task_fields(redis, keys, task_id)
    assert t["status"] == "pending" and t["frozen"] == "14" and t["unit"] == "mj_quota"
    assert await wallet(redis, keys, user, "mj_quota") == {
        "available": 86,
        "frozen": 14,
        "consumed": 0,
        "deposited": 100,
        "converted_in": 0,
        "converted_out": 0,
    }
    entries = await redis.xrange(keys.ledger(user))
    assert [e[1][b"kind"] for e in entries] == [b"top_up", b"freeze"]
    assert entries[-1][1][b"available"] == b"86" and entries[-1][1][b"task"] == task_id.encode()


async def test_insufficient_changes_nothing(redis, scripts, keys):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})  # 100: no B7 conversion
    before = await snapshot(redis, keys)
    with pytest.raises(InsufficientCredits) as err:
        await enqueue(scripts, keys, user, price=101)
    assert "101" in err.value.message and "mj_quota" in err.value.message
    assert await snapshot(redis, keys) == before


async def test_idempotency_returns_first_task(redis, scripts, keys):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    first = await enqueue(scripts, keys, user, price=10, idem="abc")
    second = await enqueue(scripts, keys, user, price=10, idem="abc")
    assert first == second
    assert (await wallet(redis, keys, user, "mj_quota"))["frozen"] == 10
    assert await redis.zcard(keys.user_tasks(user)) == 1


async def test_b7_converts_2100_then_700(redis, scripts, keys):
    user = await make_user(redis, scripts, keys, wallets={"credits": 2800, "mj_quota": 50})
    await enqueue(scripts, keys, user, price=14)  # 50 < 100: 2100 credits -> 600 quota
    q = await wallet(redis, keys, user, "mj_quota")
    c = await wallet(redis, keys, user, "credits")
    assert c["available"] == 700 and c["converted_out"] == 2100
    assert q["converted_in"] == 600 and q["available"] == 50 + 600 - 14
    # drain the quota below 100 again: now only 700 credits are left -> 200 quota
    for _ in range(5):
        await enqueue(scripts, keys, user, price=120)
    assert (await wallet(redis, keys, user, "mj_quota"))["available"] == 36
    await enqueue(scripts, keys, user, price=14)
    q = await wallet(redis, keys, user, "mj_quota")
    assert q["available"] == 36 + 200 - 14
    assert (await wallet(redis, keys, user, "credits"))["available"] == 0
    assert q["converted_in"] == 800
    assert (
        q["available"] + q["frozen"] + q["consumed"] + q["converted_out"]
        == q["deposited"] + q["converted_in"]
    )


async def test_b7_no_conversion_at_or_above_100(redis, scripts, keys):
    user = await make_user(redis, scripts, keys, wallets={"credits": 2100, "mj_quota": 100})
    await enqueue(scripts, keys, user, price=14)
    assert (await wallet(redis, keys, user, "credits"))["available"] == 2100


async def test_b5_relax_beyond_allowance_costs_double(redis, scripts, keys):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 1000}, relax_limit=2)
    ids = [await enqueue(scripts, keys, user, lane="relax", price=3, relax=True, now=T0) for _ in range(3)]
    frozen = [(await task_fields(redis, keys, i))["frozen"] for i in ids]
    assert frozen == ["3", "3", "6"]
    # next UTC day: the count starts again
    nxt = await enqueue(scripts, keys, user, lane="relax", price=3, relax=True, now=T0 + DAY_MS)
    assert (await task_fields(redis, keys, nxt))["frozen"] == "3"


async def test_b6_free_user_blocked_past_incorrect_limit(redis, scripts, keys):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100}, incorrect_limit=2)
    await redis.hset(keys.daily(user, "20270115"), "incorrect", 2)
    t0 = 1_800_000_000_000  # 2027-01-15
    before = await snapshot(redis, keys)
    with pytest.raises(IncorrectTaskLimit) as err:
        await enqueue(scripts, keys, user, price=3, now=t0)
    assert "2" in err.value.message
    assert await snapshot(redis, keys) == before
    # BYOA tasks are not subject to B6
    await enqueue(scripts, keys, user, pool="byoa", price=0, now=t0)
