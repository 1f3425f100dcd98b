"""S10 liveness in the scheduler: wait reasons, no head-of-line blocking from a task's own
exclusions, the way back to an account a task failed on, and the pending max wait that fails and
refunds a task no account can serve. Time moves by the scripts' clock override, never by sleeping."""

from __future__ import annotations

import json

from taskgate.metrics.waiting import pending_summary
from taskgate.models import AccountState, WaitReason
from taskgate.providers.base import ErrorKind
from taskgate.scheduler.dispatcher import Dispatcher
from tests.factories import enqueue, make_account, make_user, task_fields, wallet
from tests.pool.conftest import T0

MAX_WAIT = 60_000


def dispatcher(redis, scripts, keys, settings):
    return Dispatcher(redis, scripts, keys, settings.model_copy(update={"pending_max_wait_ms": MAX_WAIT}))


async def finish(scripts, keys, task_id, attempt, outcome, *, now=T0, blame=True):
    return await scripts.call(
        "finish_task",
        keys=[keys.task(task_id), keys.task_failed_accounts(task_id)],
        args=[keys.base, now, task_id, attempt, outcome, "", "", 3, "1" if blame else "0"],
    )


async def wait_reason(redis, keys, task_id) -> str | None:
    """The reason the API shows (TaskService.view): the task's own when set aside, else its flow's."""
    t = await task_fields(redis, keys, task_id)
    if t["status"] != "pending":
        return None
    if t.get("aside") == "1":
        return t["wait"]
    raw = await redis.hget(keys.flow_wait(), t["flow"])
    return raw.decode() if raw else WaitReason.QUEUED


async def test_retry_with_one_account_goes_back_to_it(redis, scripts, keys, settings):
    """S10: the only account failed the task once (transient); the retry returns to it."""
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    acc = await make_account(scripts, keys, capacity=2)
    task_id = await enqueue(scripts, keys, user, price=14, now=T0)
    d = dispatcher(redis, scripts, keys, settings)
    [first] = await d.dispatch(now_ms=T0)
    assert (await finish(scripts, keys, task_id, 1, "retry"))[1] == "pending"
    later = await enqueue(scripts, keys, user, price=14, now=T0 + 1)
    out = await d.dispatch(now_ms=T0 + 2)
    assert {(x.task_id, x.attempt, x.account_id) for x in out} == {(task_id, 2, acc), (later, 1, acc)}
    assert first.account_id == acc


async def test_excluded_task_waits_aside_and_never_holds_back_the_flow(redis, scripts, keys, settings):
    """S10 (head-of-line): the task that failed on A waits for B; the task behind it in
    the same flow takes A at once; when B frees up, the first task runs there."""
    user = await make_user(redis, scripts, keys, plan="premium", wallets={"mj_quota": 100})
    other = await make_user(redis, scripts, keys, plan="premium")
    a = await make_account(scripts, keys, capacity=1, priority=9)
    b = await make_account(scripts, keys, capacity=1, priority=1)
    d = dispatcher(redis, scripts, keys, settings)
    x = await enqueue(scripts, keys, user, price=14, now=T0)
    await d.dispatch(now_ms=T0)
    z = await enqueue(scripts, keys, other, now=T0)
    [on_b] = await d.dispatch(now_ms=T0)
    assert on_b.account_id == b
    await finish(scripts, keys, x, 1, "retry")  # x failed on a; a is free again, b is busy
    y = await enqueue(scripts, keys, user, price=14, now=T0 + 1)
    out = await d.dispatch(now_ms=T0 + 2)
    assert [(o.task_id, o.account_id) for o in out] == [(y, a)]
    assert await wait_reason(redis, keys, x) == WaitReason.WAITING_FOR_CAPACITY
    await finish(scripts, keys, z, 1, "completed", blame=False)  # b frees up: x is woken for it
    [again] = await d.dispatch(now_ms=T0 + 3)
    assert (again.task_id, again.attempt, again.account_id) == (x, 2, b)
    assert await redis.scard(keys.tasks_aside()) == 0


async def test_stranded_task_returns_when_the_cooldown_ends(redis, scripts, keys, settings, health):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    acc = await make_account(scripts, keys, capacity=1)
    task_id = await enqueue(scripts, keys, user, price=14, now=T0)
    d = dispatcher(redis, scripts, keys, settings)
    await d.dispatch(now_ms=T0)
    await finish(scripts, keys, task_id, 1, "retry")
    await scripts.call(
        "set_account_state",
        keys=[keys.account(acc)],
        args=[keys.base, T0, acc, "cooling_down", T0 + 10 * MAX_WAIT, "health", "test"],
    )
    assert await d.dispatch(now_ms=T0 + 1) == []
    assert await wait_reason(redis, keys, task_id) == WaitReason.COOLING_DOWN
    # a running cooldown is not "no account": the task outlives the max wait
    assert await d.dispatch(now_ms=T0 + 2 * MAX_WAIT) == []
    assert (await task_fields(redis, keys, task_id))["status"] == "pending"
    await health.sweep(now_ms=T0 + 10 * MAX_WAIT)
    [back] = await d.dispatch(now_ms=T0 + 10 * MAX_WAIT)
    assert (back.task_id, back.attempt, back.account_id) == (task_id, 2, acc)


async def test_only_excluded_accounts_left_while_they_are_busy(redis, scripts, keys, settings):
    user = await make_user(redis, scripts, keys, plan="premium", wallets={"mj_quota": 100})
    other = await make_user(redis, scripts, keys, plan="premium")
    acc = await make_account(scripts, keys, capacity=1)
    d = dispatcher(redis, scripts, keys, settings)
    x = await enqueue(scripts, keys, user, price=14, now=T0)
    await d.dispatch(now_ms=T0)
    await finish(scripts, keys, x, 1, "retry")
    # another user's task takes the slot first (it is first in rotation), x must wait for it
    await redis.hset(keys.account(acc), "capacity", 0)
    z = await enqueue(scripts, keys, other, now=T0)
    assert await d.dispatch(now_ms=T0 + 1) == []
    assert await wait_reason(redis, keys, x) == WaitReason.ONLY_EXCLUDED
    await redis.hset(keys.account(acc), "capacity", 2)
    await scripts.call(
        "put_account",
        keys=[keys.account(acc), keys.accounts(), keys.account_secret(acc)],
        args=[keys.base, T0, acc, json.dumps({"capacity": "2"}), ""],
    )
    out = await d.dispatch(now_ms=T0 + 2)
    assert {o.task_id for o in out} == {x, z}


async def test_no_account_fails_after_max_wait_refunded(redis, scripts, keys, settings):
    """S10, no account: nothing serves the model/mode; every task ends failed and refunded."""
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    d = dispatcher(redis, scripts, keys, settings)
    tasks = [await enqueue(scripts, keys, user, price=14, now=T0 + i) for i in range(3)]
    assert (await wallet(redis, keys, user, "mj_quota"))["frozen"] == 42
    assert await d.dispatch(now_ms=T0 + 10) == []
    assert await wait_reason(redis, keys, tasks[0]) == WaitReason.NO_ACCOUNT
    assert await wait_reason(redis, keys, tasks[2]) == WaitReason.NO_ACCOUNT
    assert await d.dispatch(now_ms=T0 + MAX_WAIT - 1) == []
    assert (await task_fields(redis, keys, tasks[0]))["status"] == "pending"
    await d.dispatch(now_ms=T0 + MAX_WAIT + 5)
    for task_id in tasks:
        t = await task_fields(redis, keys, task_id)
        assert t["status"] == "failed", task_id
        assert "no account could serve midjourney fast within 60 s" in json.loads(t["error"])["message"]
    w = await wallet(redis, keys, user, "mj_quota")
    assert (w["available"], w["frozen"], w["consumed"]) == (100, 0, 0)


async def test_banned_or_disabled_accounts_do_not_count(redis, scripts, keys, settings, registry):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    banned = await make_account(scripts, keys, capacity=1)
    paused = await make_account(scripts, keys, capacity=1)
    await registry.set_state(banned, AccountState.BANNED, by="health", reason="test")
    await registry.pause(paused)
    task_id = await enqueue(scripts, keys, user, price=14, now=T0)
    d = dispatcher(redis, scripts, keys, settings)
    assert await d.dispatch(now_ms=T0) == []
    assert await wait_reason(redis, keys, task_id) == WaitReason.NO_ACCOUNT
    await registry.resume(paused)  # an account that can serve it appears before the deadline
    [ran] = await d.dispatch(now_ms=T0 + 1)
    assert (ran.task_id, ran.account_id) == (task_id, paused)


async def test_user_cap_reason_and_cancel_frees_the_place_at_once(redis, scripts, keys, settings):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100}, cap=1)
    await make_account(scripts, keys, capacity=5)
    d = dispatcher(redis, scripts, keys, settings)
    first = await enqueue(scripts, keys, user, price=14, now=T0)
    waiting = [await enqueue(scripts, keys, user, price=14, now=T0) for _ in range(2)]
    assert len(await d.dispatch(now_ms=T0)) == 1
    assert await wait_reason(redis, keys, waiting[0]) == WaitReason.USER_CAP_REACHED
    await redis.hset(keys.user(user), "cap", 5)  # the plan changes; cancelling the head wakes the flow
    await scripts.call("cancel_task", keys=[keys.task(waiting[0])], args=[keys.base, T0, waiting[0], user])
    [d2] = await d.dispatch(now_ms=T0 + 1)
    assert d2.task_id == waiting[1]
    assert (await task_fields(redis, keys, first))["status"] == "processing"
    w = await wallet(redis, keys, user, "mj_quota")
    assert (w["available"], w["frozen"]) == (72, 28)


async def test_cancelled_aside_task_is_never_dispatched(redis, scripts, keys, settings):
    user = await make_user(redis, scripts, keys, plan="premium", wallets={"mj_quota": 100})
    a = await make_account(scripts, keys, capacity=1, priority=9)
    b = await make_account(scripts, keys, capacity=0, priority=1)
    d = dispatcher(redis, scripts, keys, settings)
    x = await enqueue(scripts, keys, user, price=14, now=T0)
    await d.dispatch(now_ms=T0)
    await finish(scripts, keys, x, 1, "retry")
    assert await d.dispatch(now_ms=T0 + 1) == []  # b (not excluded) exists but has no room
    assert await wait_reason(redis, keys, x) == WaitReason.WAITING_FOR_CAPACITY
    await scripts.call("cancel_task", keys=[keys.task(x)], args=[keys.base, T0, x, user])
    assert await redis.scard(keys.tasks_aside()) == 0
    await scripts.call(
        "put_account",
        keys=[keys.account(b), keys.accounts(), keys.account_secret(b)],
        args=[keys.base, T0, b, json.dumps({"capacity": "1"}), ""],
    )
    assert await d.dispatch(now_ms=T0 + 2) == []
    assert (await wallet(redis, keys, user, "mj_quota"))["available"] == 100
    assert a


async def test_pending_summary_and_pool_view(redis, scripts, keys, settings, registry, health):
    """Operators see it: pending tasks per wait reason, the oldest per lane, accounts per state."""
    capped = await make_user(redis, scripts, keys, wallets={"mj_quota": 100}, cap=1)
    acc = await make_account(scripts, keys, capacity=5, modes="fast")
    broken = await make_account(scripts, keys, capacity=5, modes="fast")
    await health.report(broken, ErrorKind.CREDENTIALS, now_ms=T0)
    d = dispatcher(redis, scripts, keys, settings)
    for i in range(3):
        await enqueue(scripts, keys, capped, price=14, now=T0 + i)
    other = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    relax = await enqueue(scripts, keys, other, price=14, lane="relax", now=T0 + 5)
    await d.dispatch(now_ms=T0 + 10)
    summary = await pending_summary(scripts, keys, now_ms=T0 + 2_010)
    assert summary.by_reason[WaitReason.USER_CAP_REACHED] == 2
    assert summary.by_reason[WaitReason.NO_ACCOUNT] == 1  # the relax task: no account serves relax
    assert summary.by_reason[WaitReason.QUEUED] == 0
    assert summary.oldest_age_s == {"turbo": 0.0, "fast": 2.009, "relax": 2.005}
    assert await wait_reason(redis, keys, relax) == WaitReason.NO_ACCOUNT
    pool = await registry.pool_status()
    assert pool["by_state"] == {"active": 1, "disabled": 1}
    assert pool["not_active"] == {
        "disabled": [
            {
                "account_id": broken,
                "owner": "shared",
                "reason": "credentials_rejected",
                "cooldown_until": None,
            }
        ]
    }
    assert pool["pending_by_reason"]["user_cap_reached"] == 2 and acc


class FailsFirstJob:
    """An idempotent upstream: the same key gives the same job; the first job fails transiently."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    async def submit(self, access, request) -> str:
        self.keys.append(request.idempotency_key)
        return f"job-{request.idempotency_key}"

    async def poll(self, access, upstream_id):
        from taskgate.providers.base import ProviderError, UpstreamState, UpstreamStatus

        if upstream_id == f"job-{self.keys[0]}":
            return UpstreamStatus(UpstreamState.FAILED, error=ProviderError(ErrorKind.TRANSIENT, "boom"))
        return UpstreamStatus(UpstreamState.COMPLETED, progress=100, output={"image_url": "u"})

    async def cancel(self, access, upstream_id) -> bool:
        return False

    async def probe(self, access) -> None:
        return None


async def test_going_back_to_the_failed_account_submits_a_new_job(redis, scripts, keys, settings, health):
    """An upstream that dedupes by idempotency key must not hand the retry its failed job back."""
    from tests.pool.test_worker_health import runner_for

    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    await make_account(scripts, keys, capacity=1)
    task_id = await enqueue(scripts, keys, user, price=14)
    upstream = FailsFirstJob()
    runner = runner_for(redis, settings, health, upstream)
    d = Dispatcher(redis, scripts, keys, settings)
    await d.dispatch()
    assert await runner.run(task_id, 1) == "pending"
    [again] = await d.dispatch()
    assert await runner.run(task_id, again.attempt) == "completed"
    assert upstream.keys == [task_id, f"{task_id}:retry1"]
