"""The watcher (worker/watcher.py) against a real Redis: an arq job only submits and returns, the
watcher holds the attempt (more than max_jobs at once), renews its lease in batches, routes a
callback to one poll, cancels it for the user, hands it back on shutdown, drops it when its lease
is lost, and a full watcher hands new attempts back without submitting them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from taskgate.models import CreateTaskRequest
from taskgate.pool.health import AccountHealth
from taskgate.providers.base import AccountAccess, UpstreamRequest, UpstreamState, UpstreamStatus
from taskgate.scheduler.dispatcher import Dispatcher
from taskgate.services import Services, assemble
from taskgate.settings import Settings
from taskgate.worker.execution import TaskRunner
from tests.factories import enqueue, make_account, make_user, task_fields
from tests.redis_server import free_port
from tests.worker.stack import PollLog, running_stack

WAIT_S = 20.0


class HeldUpstream:
    """Upstream jobs run until the test ends them; submits, polls and cancels are counted."""

    def __init__(self) -> None:
        self.submitted: list[str] = []
        self.polls: dict[str, int] = {}
        self.done: set[str] = set()
        self.cancelled: list[str] = []

    async def submit(self, access: AccountAccess, request: UpstreamRequest) -> str:
        self.submitted.append(request.idempotency_key)
        return f"up-{len(self.submitted)}"

    async def poll(self, access: AccountAccess, upstream_id: str) -> UpstreamStatus:
        self.polls[upstream_id] = self.polls.get(upstream_id, 0) + 1
        if upstream_id in self.done:
            return UpstreamStatus(state=UpstreamState.COMPLETED, progress=100, output={"image_url": "u"})
        return UpstreamStatus(state=UpstreamState.RUNNING, progress=10)

    async def cancel(self, access: AccountAccess, upstream_id: str) -> bool:
        self.cancelled.append(upstream_id)
        return True

    async def probe(self, access: AccountAccess) -> None:
        return None


def fast_settings(settings: Settings, **update: Any) -> Settings:
    """Polls every ~20 ms (the simulator's expected 50 ms), leases renewed only when a test says."""
    base = {
        "sim_latency_fast_s": 0.05,
        "upstream_poll_interval_s": 0.02,
        "upstream_poll_max_interval_s": 0.05,
        "upstream_polls_per_s_per_account": 0,
        "renew_interval_s": 3600.0,
    }
    return settings.model_copy(update=base | update)


async def until(predicate: Callable[[], Any], timeout_s: float = WAIT_S) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await predicate() if asyncio.iscoroutinefunction(predicate) else not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def until_count(services: Services, ids: list[str], pred: Callable[[Any], bool], n: int) -> None:
    """Wait until at least ``n`` of the tasks satisfy ``pred`` at once."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        records = [await services.tasks.load(i) for i in ids]
        if sum(1 for r in records if r is not None and pred(r)) >= n:
            return
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def dispatched(redis, scripts, keys, settings, n: int, capacity: int = 50) -> tuple[str, list[str]]:
    user = await make_user(redis, scripts, keys, plan="premium", wallets={"mj_quota": 1000})
    await make_account(scripts, keys, capacity=capacity)
    ids = [await enqueue(scripts, keys, user, price=5) for _ in range(n)]
    got = await Dispatcher(redis, scripts, keys, settings).dispatch()
    assert len(got) == n
    return user, ids


def runner_for(redis, scripts, keys, settings, upstream) -> tuple[TaskRunner, Services]:
    services = assemble(settings, redis)
    health = AccountHealth(redis, scripts, keys, settings)
    return TaskRunner(services.tasks, services.accounts, {"sim": upstream}, settings, health), services


async def ledger_kinds(redis, keys, user: str) -> list[bytes]:
    return [e[1][b"kind"] for e in await redis.xrange(keys.ledger(user))]


async def test_jobs_return_at_once_and_the_watcher_settles_each_once(redis, scripts, keys, settings):
    s = fast_settings(settings)
    upstream = HeldUpstream()
    runner, _ = runner_for(redis, scripts, keys, s, upstream)
    user, ids = await dispatched(redis, scripts, keys, s, 10)
    ended: list[tuple[str, str]] = []
    runner.watcher.on_ended = lambda task_id, attempt, result: ended.append((task_id, result.status))
    for task_id in ids:  # each job returns once submitted: none holds the wait
        assert (await runner.run(task_id, 1)).status == "watched"
    assert runner.watcher.inflight == 10 and len(runner.leases.held) == 10
    await until(lambda: all(upstream.polls.get(f"up-{i}", 0) >= 2 for i in range(1, 11)))
    await runner.leases.renew_all()  # every held lease renewed in one call
    assert (runner.leases.stats.calls, runner.leases.stats.renewed) == (1, 10)
    upstream.done.update(f"up-{i}" for i in range(1, 11))
    await asyncio.wait_for(runner.watcher.idle(), WAIT_S)
    assert sorted(ended) == sorted((t, "completed") for t in ids)
    assert {(await task_fields(redis, keys, t))["status"] for t in ids} == {"completed"}
    assert (await ledger_kinds(redis, keys, user)).count(b"charge") == 10
    assert runner.leases.held == {} and await redis.zcard(keys.leases()) == 0


async def test_a_callback_wakes_one_poll_and_only_its_attempt(redis, scripts, keys, settings):
    s = fast_settings(settings, sim_latency_fast_s=3600.0)  # no scheduled poll within the test
    upstream = HeldUpstream()
    runner, _ = runner_for(redis, scripts, keys, s, upstream)
    _, [task_id] = await dispatched(redis, scripts, keys, s, 1)
    assert (await runner.run(task_id, 1)).status == "watched"
    w = runner.watcher.held[task_id]
    w.schedule.callback = True  # type: ignore[union-attr]  # as if callbacks were configured
    runner.watcher.wake(task_id, 2)  # another attempt's callback: ignored
    await asyncio.sleep(0.1)
    assert upstream.polls == {}
    runner.watcher.wake(task_id, 1)
    await until(lambda: upstream.polls.get("up-1") == 1)
    upstream.done.add("up-1")
    runner.watcher.wake(task_id, 1)
    runner.watcher.wake(task_id, 1)  # a duplicated callback
    await asyncio.wait_for(runner.watcher.idle(), WAIT_S)
    assert (await task_fields(redis, keys, task_id))["status"] == "completed"
    runner.watcher.wake(task_id, 1)  # after the end: nothing held, nothing polled
    await asyncio.sleep(0.05)
    assert upstream.polls["up-1"] <= 3 and runner.watcher.inflight == 0


async def test_user_cancel_of_a_watched_task_cancels_upstream(redis, scripts, keys, settings):
    s = fast_settings(settings, sim_latency_fast_s=3600.0)  # only the cancel makes it due
    upstream = HeldUpstream()
    runner, services = runner_for(redis, scripts, keys, s, upstream)
    user, [task_id] = await dispatched(redis, scripts, keys, s, 1)
    assert (await runner.run(task_id, 1)).status == "watched"
    await services.tasks.cancel(user, [task_id])
    await runner.leases.renew_all()  # the renewal reports the cancel request to the watcher
    await asyncio.wait_for(runner.watcher.idle(), WAIT_S)
    t = await task_fields(redis, keys, task_id)
    assert (t["status"], t["outcome"]) == ("failed", "cancelled")
    assert upstream.cancelled == ["up-1"] and upstream.polls == {}
    kinds = await ledger_kinds(redis, keys, user)
    assert kinds.count(b"charge") == 0 and kinds.count(b"refund") == 1


async def test_hand_back_all_returns_every_watched_attempt(redis, scripts, keys, settings):
    s = fast_settings(settings)
    upstream = HeldUpstream()
    runner, _ = runner_for(redis, scripts, keys, s, upstream)
    user, ids = await dispatched(redis, scripts, keys, s, 5)
    for task_id in ids:
        assert (await runner.run(task_id, 1)).status == "watched"
    await until(lambda: len(upstream.polls) == 5)
    assert await runner.watcher.hand_back_all() == 5
    assert runner.watcher.inflight == 0 and runner.watcher.room() == 0  # closing: takes no more
    for task_id in ids:
        t = await task_fields(redis, keys, task_id)
        assert t["status"] == "pending" and t["upstream_id"]  # kept: the next attempt resumes it
    assert await redis.zcard(keys.leases()) == 0
    assert (await ledger_kinds(redis, keys, user)).count(b"charge") == 0
    polls = dict(upstream.polls)
    await asyncio.sleep(0.1)
    assert upstream.polls == polls  # nothing is polled after the hand-back


async def test_a_resumed_attempt_polls_its_stored_upstream_id_without_submitting(
    redis, scripts, keys, settings
):
    s = fast_settings(settings, sim_latency_fast_s=3600.0)  # only a resume polls at once
    upstream = HeldUpstream()
    first, _ = runner_for(redis, scripts, keys, s, upstream)
    _, [task_id] = await dispatched(redis, scripts, keys, s, 1)
    assert (await first.run(task_id, 1)).status == "watched"
    await first.watcher.hand_back_all()
    [again] = await Dispatcher(redis, scripts, keys, s).dispatch()
    second, _ = runner_for(redis, scripts, keys, s, upstream)
    upstream.done.add("up-1")
    assert (await second.run(task_id, again.attempt)).status == "watched"
    await asyncio.wait_for(second.watcher.idle(), WAIT_S)
    assert (await task_fields(redis, keys, task_id))["status"] == "completed"
    assert upstream.submitted == [upstream.submitted[0]] and upstream.polls == {"up-1": 1}


async def test_a_lost_lease_drops_the_attempt_and_it_settles_nothing(redis, scripts, keys, settings):
    s = fast_settings(settings)
    upstream = HeldUpstream()
    runner, _ = runner_for(redis, scripts, keys, s, upstream)
    user, [task_id] = await dispatched(redis, scripts, keys, s, 1)
    assert (await runner.run(task_id, 1)).status == "watched"
    await redis.hset(keys.task(task_id), "attempt", 2)  # as if reaped and re-dispatched elsewhere
    await runner.leases.renew_all()
    assert runner.watcher.inflight == 0
    upstream.done.add("up-1")
    polls = upstream.polls.get("up-1", 0)
    await asyncio.sleep(0.1)
    assert upstream.polls.get("up-1", 0) <= polls + 1  # at most a poll already under way
    assert (await task_fields(redis, keys, task_id))["status"] == "processing"
    assert (await ledger_kinds(redis, keys, user)).count(b"charge") == 0


async def test_a_full_watcher_hands_new_attempts_back_unsubmitted(redis, scripts, keys, settings):
    s = fast_settings(settings, worker_max_inflight=2)
    upstream = HeldUpstream()
    runner, _ = runner_for(redis, scripts, keys, s, upstream)
    _, ids = await dispatched(redis, scripts, keys, s, 3)
    assert [(await runner.run(t, 1)).status for t in ids] == ["watched", "watched", "pending"]
    assert len(upstream.submitted) == 2 and runner.watcher.room() == 0
    assert (await task_fields(redis, keys, ids[2]))["status"] == "pending"
    assert len(runner.leases.held) == 2
    await runner.watcher.hand_back_all()


# --- the real worker: max_jobs no longer bounds the tasks in flight


async def test_more_tasks_in_flight_than_max_jobs_complete(settings: Settings):
    s = settings.model_copy(
        update={
            "sim_port": free_port(),
            "worker_max_jobs": 1,
            "sim_latency_fast_s": 2.0,
            "renew_interval_s": 0.2,
            "sweep_interval_s": 0.2,
        }
    )
    async for services in running_stack(s, PollLog(), "watch-test"):
        user_id, _ = await services.users.create("premium", wallets={"mj_quota": 10_000})
        user = await services.users.get(user_id)
        req = CreateTaskRequest(
            model="midjourney",
            task_type="imagine",
            input={"prompt": "w [sim duration=2]", "process_mode": "fast"},
        )
        ids = [str((await services.tasks.create(user, req))["task_id"]) for _ in range(12)]

        # with max_jobs=1, 8 submitted and unfinished at once only if the jobs do not hold the wait
        await until_count(services, ids, lambda r: bool(r.upstream_id) and r.status == "processing", 8)
        await until_count(services, ids, lambda r: r.status == "completed", 12)
        kinds = [e[1][b"kind"] for e in await services.redis.xrange(services.keys.ledger(user_id))]
        assert kinds.count(b"charge") == 12
