"""finish_task, renew_leases, reap_leases, cancel_task, record_progress: fencing, exactly-once
settlement (B2, B4), penalties (B5, B6), leases and their recovery (§8)."""

from __future__ import annotations

import asyncio
import json

import pytest

from taskgate.errors import AlreadyFinal, NotFound, StaleAttempt
from taskgate.scheduler.dispatcher import Dispatcher
from taskgate.store import script_api
from taskgate.store.keys import ARQ_IN_PROGRESS_KEY_PREFIX
from tests.factories import enqueue, make_account, make_user, task_fields, wallet

T0 = 1_800_000_000_000


async def finish(scripts, keys, task_id, attempt, outcome, *, blame=False, max_attempts=3, now=""):
    return await scripts.call(
        "finish_task",
        keys=[keys.task(task_id), keys.task_failed_accounts(task_id)],
        args=[
            keys.base,
            now,
            task_id,
            attempt,
            outcome,
            json.dumps({"image_url": "x"}),
            "",
            max_attempts,
            "1" if blame else "0",
        ],
    )


async def renew(scripts, keys, task_id, attempt, now=None):
    """One attempt's lease renewed by the worker's batched renewal."""
    return await script_api.renew_leases(scripts, keys, now=now, lease_ms=30_000, leases=[(task_id, attempt)])


async def one_dispatched(redis, scripts, keys, settings, *, price=14, wallets=None, **user_kw):
    user = await make_user(redis, scripts, keys, wallets=wallets or {"mj_quota": 100}, **user_kw)
    await make_account(scripts, keys, capacity=5)
    task_id = await enqueue(scripts, keys, user, price=price)
    [d] = await Dispatcher(redis, scripts, keys, settings).dispatch()
    return user, task_id, d


async def job_started(redis, keys, task_id, attempt):
    """What arq does as a worker starts the attempt's job: a lost lease after this is a lost attempt."""
    await redis.set(ARQ_IN_PROGRESS_KEY_PREFIX + keys.arq_job_id(task_id, attempt), "1")


async def test_completed_charges_once_and_releases(redis, scripts, keys, settings):
    user, task_id, d = await one_dispatched(redis, scripts, keys, settings)
    assert (await finish(scripts, keys, task_id, 1, "completed"))[1] == "completed"
    w = await wallet(redis, keys, user, "mj_quota")
    assert (w["available"], w["frozen"], w["consumed"]) == (86, 0, 14)
    t = await task_fields(redis, keys, task_id)
    assert t["status"] == "completed" and t["consume"] == "14" and t["progress"] == "100"
    assert await redis.zcard(keys.user_leases(user)) == 0
    assert await redis.zcard(keys.account_leases(d.account_id)) == 0
    assert await redis.zcard(keys.leases()) == 0


async def test_failed_refunds(redis, scripts, keys, settings):
    user, task_id, _ = await one_dispatched(redis, scripts, keys, settings)
    await finish(scripts, keys, task_id, 1, "failed")
    w = await wallet(redis, keys, user, "mj_quota")
    assert (w["available"], w["frozen"], w["consumed"]) == (100, 0, 0)


async def test_fifty_concurrent_settles_move_money_once(redis, scripts, keys, settings):
    user, task_id, _ = await one_dispatched(redis, scripts, keys, settings)
    results = await asyncio.gather(
        *[finish(scripts, keys, task_id, 1, "completed") for _ in range(50)], return_exceptions=True
    )
    assert sum(1 for r in results if not isinstance(r, Exception)) == 1
    assert all(isinstance(r, AlreadyFinal) for r in results if isinstance(r, Exception))
    kinds = [e[1][b"kind"] for e in await redis.xrange(keys.ledger(user))]
    assert kinds.count(b"charge") == 1 and kinds.count(b"refund") == 0


async def test_stale_attempt_is_refused(redis, scripts, keys, settings):
    _, task_id, _ = await one_dispatched(redis, scripts, keys, settings)
    with pytest.raises(StaleAttempt):
        await finish(scripts, keys, task_id, 2, "completed")
    assert (await renew(scripts, keys, task_id, 7)).lost == [task_id]


async def test_retry_moves_to_another_account_without_new_charge(redis, scripts, keys, settings):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    a1 = await make_account(scripts, keys, capacity=5, priority=9)
    a2 = await make_account(scripts, keys, capacity=5, priority=1)
    task_id = await enqueue(scripts, keys, user, price=14)
    d = Dispatcher(redis, scripts, keys, settings)
    [first] = await d.dispatch()
    assert first.account_id == a1
    assert (await finish(scripts, keys, task_id, 1, "retry", blame=True))[1] == "pending"
    [second] = await d.dispatch()
    assert (second.task_id, second.attempt, second.account_id) == (task_id, 2, a2)
    await finish(scripts, keys, task_id, 2, "completed")
    w = await wallet(redis, keys, user, "mj_quota")
    assert (w["available"], w["frozen"], w["consumed"]) == (86, 0, 14)
    kinds = [e[1][b"kind"] for e in await redis.xrange(keys.ledger(user))]
    assert kinds == [b"top_up", b"freeze", b"charge"]


async def test_retry_exhausted_fails_and_refunds(redis, scripts, keys, settings):
    user, task_id, _ = await one_dispatched(redis, scripts, keys, settings)
    assert (await finish(scripts, keys, task_id, 1, "retry", max_attempts=1))[1] == "failed"
    assert (await wallet(redis, keys, user, "mj_quota"))["available"] == 100


async def test_b6_paid_plan_past_limit_keeps_frozen_credits(redis, scripts, keys, settings):
    user = await make_user(
        redis, scripts, keys, plan="developer", wallets={"mj_quota": 100}, incorrect_limit=1
    )
    await make_account(scripts, keys, capacity=5)
    d = Dispatcher(redis, scripts, keys, settings)
    ids = [await enqueue(scripts, keys, user, price=10) for _ in range(2)]
    await d.dispatch()
    await finish(scripts, keys, ids[0], 1, "incorrect")  # 1st incorrect: within the limit, refunded
    await finish(scripts, keys, ids[1], 1, "incorrect")  # 2nd: past it, consumed
    w = await wallet(redis, keys, user, "mj_quota")
    assert (w["available"], w["frozen"], w["consumed"]) == (90, 0, 10)
    kinds = [e[1][b"kind"] for e in await redis.xrange(keys.ledger(user))]
    assert kinds.count(b"penalty") == 1


async def test_b5_bonus_for_successful_fast_imagine(redis, scripts, keys, settings):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 1000}, relax_limit=0)
    await make_account(scripts, keys, capacity=5)
    task_id = await enqueue(scripts, keys, user, price=14, bonus=True)
    await Dispatcher(redis, scripts, keys, settings).dispatch()
    await finish(scripts, keys, task_id, 1, "completed")
    relax = await enqueue(scripts, keys, user, lane="relax", price=3, relax=True)
    assert (await task_fields(redis, keys, relax))["frozen"] == "3"  # the bonus allows one at base price
    again = await enqueue(scripts, keys, user, lane="relax", price=3, relax=True)
    assert (await task_fields(redis, keys, again))["frozen"] == "6"


async def test_lease_expiry_requeues_and_old_worker_is_fenced(redis, scripts, keys, settings):
    user, task_id, first = await one_dispatched(redis, scripts, keys, settings)
    await job_started(redis, keys, task_id, 1)
    d = Dispatcher(redis, scripts, keys, settings)
    assert await d.reap(now_ms=T0 * 2) == [(task_id, "pending")]
    assert await redis.zcard(keys.user_leases(user)) == 0
    [second] = await d.dispatch()
    assert (second.task_id, second.attempt) == (task_id, 2)
    with pytest.raises(StaleAttempt):
        await finish(scripts, keys, task_id, 1, "completed")
    await finish(scripts, keys, task_id, 2, "completed")
    assert (await wallet(redis, keys, user, "mj_quota"))["consumed"] == 14


async def test_lease_expiry_resumes_upstream_job_on_same_account(redis, scripts, keys, settings):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    acc = await make_account(scripts, keys, capacity=1, priority=1)
    await make_account(scripts, keys, capacity=1, priority=9, models="flux")
    task_id = await enqueue(scripts, keys, user, price=14)
    d = Dispatcher(redis, scripts, keys, settings)
    await d.dispatch()
    await scripts.call(
        "record_progress", keys=[keys.task(task_id)], args=[keys.base, "", task_id, 1, "up-123", 10, "0"]
    )
    await d.reap(now_ms=T0 * 2)
    [again] = await d.dispatch()
    assert again.account_id == acc
    assert (await task_fields(redis, keys, task_id))["upstream_id"] == "up-123"


async def test_reap_gives_up_after_max_attempts(redis, scripts, keys, settings):
    user, task_id, _ = await one_dispatched(redis, scripts, keys, settings)
    await job_started(redis, keys, task_id, 1)
    d = Dispatcher(redis, scripts, keys, settings.model_copy(update={"max_attempts": 1}))
    assert await d.reap(now_ms=T0 * 2) == [(task_id, "failed")]
    t = await task_fields(redis, keys, task_id)
    assert t["status"] == "failed" and "lease" in json.loads(t["error"])["message"]
    assert (await wallet(redis, keys, user, "mj_quota"))["available"] == 100


async def test_renew_extends_every_lease(redis, scripts, keys, settings):
    user, task_id, d = await one_dispatched(redis, scripts, keys, settings)
    before = await redis.zscore(keys.leases(), task_id)
    res = await renew(scripts, keys, task_id, 1, now=int(before) + 5000)
    assert res.lost == [] and res.cancel == []
    deadline = res.deadline
    assert deadline == int(before) + 5000 + 30_000
    for key in (keys.leases(), keys.user_leases(user), keys.account_leases(d.account_id)):
        assert await redis.zscore(key, task_id) == deadline


async def test_cancel_pending_refunds_and_dequeues(redis, scripts, keys, settings):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    task_id = await enqueue(scripts, keys, user, price=14)
    other = await make_user(redis, scripts, keys)
    with pytest.raises(NotFound):
        await scripts.call("cancel_task", keys=[keys.task(task_id)], args=[keys.base, "", task_id, other])
    res = await scripts.call("cancel_task", keys=[keys.task(task_id)], args=[keys.base, "", task_id, user])
    assert res[1] == "failed"
    t = await task_fields(redis, keys, task_id)
    assert json.loads(t["error"])["message"] == "cancelled"
    assert (await wallet(redis, keys, user, "mj_quota"))["available"] == 100
    await make_account(scripts, keys, capacity=5)
    assert await Dispatcher(redis, scripts, keys, settings).dispatch() == []
    # cancelling again changes nothing
    await scripts.call("cancel_task", keys=[keys.task(task_id)], args=[keys.base, "", task_id, user])
    kinds = [e[1][b"kind"] for e in await redis.xrange(keys.ledger(user))]
    assert kinds.count(b"refund") == 1


async def test_cancel_processing_flags_the_worker(redis, scripts, keys, settings):
    user, task_id, _ = await one_dispatched(redis, scripts, keys, settings)
    res = await scripts.call("cancel_task", keys=[keys.task(task_id)], args=[keys.base, "", task_id, user])
    assert res[1] == "processing"
    assert (await renew(scripts, keys, task_id, 1)).cancel == [task_id]
    await finish(scripts, keys, task_id, 1, "cancelled")
    assert (await wallet(redis, keys, user, "mj_quota"))["available"] == 100


async def test_day_rollover_resets_incorrect_counts_and_bonuses(redis, scripts, keys, settings):
    """B5/B6 counters are per UTC day: at 00:00 UTC the block lifts and the day's bonus is gone."""
    from taskgate.errors import IncorrectTaskLimit

    day = 86_400_000
    midnight = (T0 // day + 1) * day
    free = await make_user(redis, scripts, keys, wallets={"mj_quota": 1000}, incorrect_limit=1)
    paid = await make_user(redis, scripts, keys, plan="developer", wallets={"mj_quota": 1000}, relax_limit=0)
    await make_account(scripts, keys, capacity=5)
    d = Dispatcher(redis, scripts, keys, settings)
    bad = await enqueue(scripts, keys, free, price=3, now=midnight - 2000)
    good = await enqueue(scripts, keys, paid, price=14, bonus=True, now=midnight - 2000)
    await d.dispatch(now_ms=midnight - 2000)
    await finish(scripts, keys, bad, 1, "incorrect", now=midnight - 1000)
    await finish(scripts, keys, good, 1, "completed", now=midnight - 1000)
    with pytest.raises(IncorrectTaskLimit):  # the free user is blocked for the rest of the day
        await enqueue(scripts, keys, free, price=3, now=midnight - 1)
    today = await enqueue(scripts, keys, paid, lane="relax", price=3, relax=True, now=midnight - 1)
    assert (await task_fields(redis, keys, today))["frozen"] == "3"  # the bonus: base price
    # after midnight the block is lifted, and the bonus is gone (relax limit 0: double price)
    await enqueue(scripts, keys, free, price=3, now=midnight)
    tomorrow = await enqueue(scripts, keys, paid, lane="relax", price=3, relax=True, now=midnight)
    assert (await task_fields(redis, keys, tomorrow))["frozen"] == "6"


async def handed_back_twice(redis, scripts, keys, settings):
    """A task whose first two attempts were handed back unfinished (full watchers, shutdowns);
    its third attempt is dispatched."""
    user, task_id, _ = await one_dispatched(redis, scripts, keys, settings)
    d = Dispatcher(redis, scripts, keys, settings)
    for attempt in (1, 2):
        assert (await finish(scripts, keys, task_id, attempt, "handback"))[1] == "pending"
        [again] = await d.dispatch()
        assert again.attempt == attempt + 1
    return user, task_id


async def test_hand_backs_spend_no_attempts_of_a_retry(redis, scripts, keys, settings):
    user, task_id = await handed_back_twice(redis, scripts, keys, settings)
    # attempt 3 of max_attempts 2 fails upstream: the first that ran to an end, so it is retried
    assert (await finish(scripts, keys, task_id, 3, "retry", max_attempts=2))[1] == "pending"
    [fourth] = await Dispatcher(redis, scripts, keys, settings).dispatch()
    assert (await finish(scripts, keys, task_id, fourth.attempt, "retry", max_attempts=2))[1] == "failed"
    assert (await wallet(redis, keys, user, "mj_quota"))["available"] == 100  # refunded once


async def test_hand_backs_spend_no_attempts_of_a_lost_lease(redis, scripts, keys, settings):
    _, task_id = await handed_back_twice(redis, scripts, keys, settings)
    await job_started(redis, keys, task_id, 3)
    d = Dispatcher(redis, scripts, keys, settings.model_copy(update={"max_attempts": 2}))
    assert await d.reap(now_ms=T0 * 2) == [(task_id, "pending")]  # the first attempt lost: retried
