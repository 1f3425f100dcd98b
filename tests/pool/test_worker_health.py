"""S9 through the worker: an account problem met by a running attempt changes the account's health,
and the task moves to another account, charged once; a completed run ends the cooldown streak."""

from __future__ import annotations

import pytest

from taskgate.errors import AlreadyFinal, StaleAttempt
from taskgate.models import AccountState
from taskgate.providers.base import (
    AccountAccess,
    ErrorKind,
    ProviderError,
    UpstreamRequest,
    UpstreamState,
    UpstreamStatus,
)
from taskgate.scheduler.dispatcher import Dispatcher
from taskgate.services import assemble
from taskgate.store import script_api
from taskgate.worker.execution import TaskRunner
from tests.factories import enqueue, make_account, make_user, task_fields, wallet
from tests.pool.conftest import account_hash, state_of


class ScriptedUpstream:
    """Accounts in `fail` fail every poll with their error; the others complete at once."""

    def __init__(self, fail: dict[str, ProviderError]) -> None:
        self.fail, self.submitted = fail, []

    async def submit(self, access: AccountAccess, request: UpstreamRequest) -> str:
        self.submitted.append(access.account_id)
        return f"up-{access.account_id}-{len(self.submitted)}"

    async def poll(self, access: AccountAccess, upstream_id: str) -> UpstreamStatus:
        if access.account_id in self.fail:
            raise self.fail[access.account_id]
        return UpstreamStatus(state=UpstreamState.COMPLETED, progress=100, output={"image_url": "u"})

    async def cancel(self, access: AccountAccess, upstream_id: str) -> bool:
        return False

    async def probe(self, access: AccountAccess) -> None:
        return None


class Runner:
    """A TaskRunner whose ``run`` returns once its watcher has settled the attempt."""

    def __init__(self, runner: TaskRunner) -> None:
        self.runner, self.results = runner, {}
        runner.watcher.on_ended = lambda task_id, attempt, ended: self.results.update({task_id: ended.status})

    async def run(self, task_id: str, attempt: int) -> str:
        assert (await self.runner.run(task_id, attempt)).status == "watched"
        await self.runner.watcher.idle()
        return self.results[task_id]


def runner_for(redis, settings, health, upstream):
    services = assemble(settings, redis)
    return Runner(TaskRunner(services.tasks, services.accounts, {"sim": upstream}, settings, health))


async def test_a_ban_mid_flight_moves_the_task_and_charges_once(redis, scripts, keys, settings, health):
    owner = await make_user(redis, scripts, keys, plan="developer")
    u = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    first = await make_account(scripts, keys, owner="shared", capacity=5, priority=9)
    second = await make_account(scripts, keys, capacity=5, priority=1)
    task_id = await enqueue(scripts, keys, u, price=14)
    upstream = ScriptedUpstream({first: ProviderError(ErrorKind.BANNED, "account suspended")})
    runner = runner_for(redis, settings, health, upstream)
    d = Dispatcher(redis, scripts, keys, settings)
    [a1] = await d.dispatch()
    assert a1.account_id == first
    assert await runner.run(task_id, 1) == "pending"  # retried, not failed
    assert await state_of(redis, keys, first) == AccountState.BANNED
    [a2] = await d.dispatch()
    assert (a2.account_id, a2.attempt) == (second, 2)
    assert await runner.run(task_id, 2) == "completed"
    assert upstream.submitted == [first, second]
    t = await task_fields(redis, keys, task_id)
    assert (t["status"], t["account"], t["consume"]) == ("completed", second, "14")
    w = await wallet(redis, keys, u, "mj_quota")
    assert (w["available"], w["frozen"], w["consumed"]) == (86, 0, 14)
    kinds = [e[1][b"kind"] for e in await redis.xrange(keys.ledger(u))]
    assert kinds.count(b"freeze") == 1 and kinds.count(b"charge") == 1
    assert await redis.xlen(keys.account_events(owner)) == 0  # shared accounts notify no user


async def test_rate_limits_from_the_upstream_cool_the_account_down(redis, scripts, keys, settings, health):
    u = await make_user(redis, scripts, keys, plan="developer")
    acc = await make_account(scripts, keys, owner=u, capacity=2)
    task_id = await enqueue(scripts, keys, u, pool="byoa")
    limited = ProviderError(ErrorKind.RATE_LIMITED, "too many requests", retry_after_s=90)
    runner = runner_for(redis, settings, health, ScriptedUpstream({acc: limited}))
    [a] = await Dispatcher(redis, scripts, keys, settings).dispatch()
    assert await runner.run(task_id, a.attempt) == "pending"
    a_hash = await account_hash(redis, keys, acc)
    assert a_hash["state"] == AccountState.COOLING_DOWN
    assert int(a_hash["cooldown_until"]) - int(a_hash["state_ms"]) == 90_000
    events = await redis.xrange(keys.account_events(u))
    assert events[-1][1][b"state"] == b"cooling_down"


async def test_a_completed_run_ends_the_cooldown_streak(redis, scripts, keys, settings, health):
    u = await make_user(redis, scripts, keys)
    acc = await make_account(scripts, keys, capacity=2)
    await redis.hset(keys.account(acc), "cooldown_streak", 3)
    task_id = await enqueue(scripts, keys, u)
    runner = runner_for(redis, settings, health, ScriptedUpstream({}))
    [a] = await Dispatcher(redis, scripts, keys, settings).dispatch()
    assert await runner.run(task_id, a.attempt) == "completed"
    assert "cooldown_streak" not in await account_hash(redis, keys, acc)


async def streak_after_finish(redis, scripts, keys, settings, outcome, *, state=AccountState.ACTIVE):
    """Whether an account with a cooldown streak (in ``state``) keeps it after finish_task(outcome)."""
    u = await make_user(redis, scripts, keys)
    acc = await make_account(scripts, keys, capacity=2)
    task_id = await enqueue(scripts, keys, u)
    [a] = await Dispatcher(redis, scripts, keys, settings).dispatch()
    await redis.hset(keys.account(acc), mapping={"cooldown_streak": 3, "state": state})
    await script_api.finish_task(
        scripts, keys, task_id=task_id, attempt=a.attempt, outcome=outcome, max_attempts=3
    )
    return "cooldown_streak" in await account_hash(redis, keys, acc)


@pytest.mark.parametrize("outcome", ["completed", "failed", "incorrect", "cancelled", "retry", "handback"])
async def test_finish_ends_the_streak_of_an_active_account_only_when_completed(
    redis, scripts, keys, settings, outcome
):
    assert await streak_after_finish(redis, scripts, keys, settings, outcome) == (outcome != "completed")


async def test_a_completed_run_on_a_cooling_down_account_keeps_its_streak(redis, scripts, keys, settings):
    """As report_account's success: the next cooldown after this one still grows."""
    state = AccountState.COOLING_DOWN
    assert await streak_after_finish(redis, scripts, keys, settings, "completed", state=state)


async def test_a_fenced_off_finish_leaves_the_streak(redis, scripts, keys, settings):
    u = await make_user(redis, scripts, keys)
    acc = await make_account(scripts, keys, capacity=2)
    task_id = await enqueue(scripts, keys, u)
    [a] = await Dispatcher(redis, scripts, keys, settings).dispatch()
    await redis.hset(keys.account(acc), "cooldown_streak", 3)

    async def finish(attempt: int) -> None:
        await script_api.finish_task(
            scripts, keys, task_id=task_id, attempt=attempt, outcome="completed", max_attempts=3
        )

    with pytest.raises(StaleAttempt):
        await finish(a.attempt + 1)
    assert "cooldown_streak" in await account_hash(redis, keys, acc)
    await finish(a.attempt)
    await redis.hset(keys.account(acc), "cooldown_streak", 2)  # a new streak since
    with pytest.raises(AlreadyFinal):
        await finish(a.attempt)  # a repeat changes nothing
    assert (await account_hash(redis, keys, acc))["cooldown_streak"] == "2"
