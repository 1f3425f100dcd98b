"""renew_leases: many attempts' leases extended in one call, each fenced by its attempt (§8);
the LeaseKeeper that calls it once per period for every attempt a worker runs."""

from __future__ import annotations

import asyncio
import json

import pytest

from taskgate.errors import ScriptError
from taskgate.scheduler.dispatcher import Dispatcher
from taskgate.worker.leases import LeaseKeeper
from tests.factories import enqueue, make_account, make_user

T0 = 1_800_000_000_000


async def dispatched(redis, scripts, keys, settings, n):
    user = await make_user(redis, scripts, keys, plan="premium", wallets={"mj_quota": 10_000})
    account = await make_account(scripts, keys, capacity=n)
    ids = [await enqueue(scripts, keys, user, price=1) for _ in range(n)]
    done = await Dispatcher(redis, scripts, keys, settings).dispatch(n)
    assert sorted(d.task_id for d in done) == sorted(ids)
    return user, account, ids


async def renew(scripts, keys, pairs, now="", lease_ms=30_000):
    args = [keys.base, str(now), lease_ms]
    for task_id, attempt in pairs:
        args += [task_id, attempt]
    return await scripts.call("renew_leases", keys=[keys.leases()], args=args)


async def lease_scores(redis, keys, user, account, task_id):
    return [
        await redis.zscore(keys.leases(), task_id),
        await redis.zscore(keys.user_leases(user), task_id),
        await redis.zscore(keys.account_leases(account), task_id),
        await redis.zscore(keys.account_mode_leases(account, "fast"), task_id),
    ]


async def test_renews_every_lease_of_every_task(redis, scripts, keys, settings):
    user, account, ids = await dispatched(redis, scripts, keys, settings, 3)
    status, deadline, lost, cancel = await renew(scripts, keys, [(i, 1) for i in ids], now=T0)
    assert (status, deadline, lost, cancel) == (0, T0 + 30_000, [], [])
    for task_id in ids:
        assert await lease_scores(redis, keys, user, account, task_id) == [T0 + 30_000] * 4
        assert await redis.hget(keys.task(task_id), "lease_deadline") == str(T0 + 30_000).encode()
    # the same call again changes nothing further
    assert (await renew(scripts, keys, [(i, 1) for i in ids], now=T0))[2:] == [[], []]


async def test_stale_and_reaped_attempts_are_lost_and_untouched(redis, scripts, keys, settings):
    user, account, [a, b, c] = await dispatched(redis, scripts, keys, settings, 3)
    before_b = await lease_scores(redis, keys, user, account, b)
    await redis.zrem(keys.leases(), c)  # as if the reaper had taken c's lease
    _, _, lost, _ = await renew(scripts, keys, [(a, 1), (b, 2), (c, 1), ("no-such-task", 1)], now=T0)
    assert lost == [b, c, "no-such-task"]
    assert await lease_scores(redis, keys, user, account, a) == [T0 + 30_000] * 4
    assert await lease_scores(redis, keys, user, account, b) == before_b  # wrong attempt: not extended
    assert await redis.zscore(keys.leases(), c) is None  # a reaped lease is never re-created


async def test_reports_cancel_requests(redis, scripts, keys, settings):
    user, _, [a, b] = await dispatched(redis, scripts, keys, settings, 2)
    await scripts.call("cancel_task", keys=[keys.task(b)], args=[keys.base, "", b, user])
    assert (await renew(scripts, keys, [(a, 1), (b, 1)]))[3] == [b]


async def test_odd_arguments_are_refused_and_change_nothing(redis, scripts, keys, settings):
    user, account, [a] = await dispatched(redis, scripts, keys, settings, 1)
    before = await lease_scores(redis, keys, user, account, a)
    with pytest.raises(ScriptError):
        await scripts.call("renew_leases", keys=[keys.leases()], args=[keys.base, str(T0), 30_000, a])
    assert await lease_scores(redis, keys, user, account, a) == before


async def finish(scripts, keys, task_id):
    await scripts.call(
        "finish_task",
        keys=[keys.task(task_id), keys.task_failed_accounts(task_id)],
        args=[keys.base, "", task_id, 1, "completed", json.dumps({"image_url": "x"}), "", 3, "0"],
    )


async def test_renewals_racing_finishes_never_resurrect_a_slot(redis, scripts, keys, settings):
    """Renewal batches running concurrently with every task's finish leave no lease behind."""
    user, account, ids = await dispatched(redis, scripts, keys, settings, 30)
    pairs = [(i, 1) for i in ids]
    renewals = [renew(scripts, keys, pairs) for _ in range(20)]
    await asyncio.gather(*[finish(scripts, keys, i) for i in ids], *renewals)
    for key in (
        keys.leases(),
        keys.user_leases(user),
        keys.account_leases(account),
        keys.account_mode_leases(account, "fast"),
    ):
        assert await redis.zcard(key) == 0
    # and once finished, every task is reported lost
    assert sorted((await renew(scripts, keys, pairs))[2]) == sorted(ids)


async def test_keeper_renews_in_one_call_and_passes_on_cancel_and_loss(redis, scripts, keys, settings):
    user, account, [a, b, c] = await dispatched(redis, scripts, keys, settings, 3)
    keeper = LeaseKeeper(scripts, keys, settings)
    held = [keeper.hold(a, 1), keeper.hold(b, 1), keeper.hold(c, 7)]
    await scripts.call("cancel_task", keys=[keys.task(b)], args=[keys.base, "", b, user])
    before = await redis.zscore(keys.leases(), a)
    await redis.hset(keys.task(a), "lease_deadline", "0")
    await keeper.renew_all()
    assert (keeper.stats.calls, keeper.stats.renewed) == (1, 2)
    assert int(await redis.hget(keys.task(a), "lease_deadline")) >= before
    assert held[1].cancelled.is_set() and not held[0].cancelled.is_set()
    assert held[2].lost and set(keeper.held) == {a, b}  # the stale attempt is no longer renewed
    keeper.release(held[0])
    keeper.release(held[1])
    assert keeper.held == {} and keeper._loop is None


async def test_keeper_loop_renews_every_period(redis, scripts, keys, settings):
    settings = settings.model_copy(update={"renew_interval_s": 0.01})
    _, _, [a] = await dispatched(redis, scripts, keys, settings, 1)
    keeper = LeaseKeeper(scripts, keys, settings)
    lease = keeper.hold(a, 1)
    while keeper.stats.calls < 3:
        await asyncio.sleep(0.01)
    keeper.release(lease)
    assert keeper.stats.renewed >= 3
