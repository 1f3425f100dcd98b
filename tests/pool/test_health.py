"""Account health (S9) and the BYOA maximum wait (S6), with time moved by the scripts' clock."""

from __future__ import annotations

import json

import pytest

from taskgate.models import AccountState
from taskgate.pool.health import AccountHealth
from taskgate.pool.registry import AccountRegistry
from taskgate.providers.base import ErrorKind, ProviderError
from taskgate.scheduler.dispatcher import Dispatcher
from tests.factories import enqueue, make_account, make_user, task_fields, wallet
from tests.lua.test_task_lifecycle import finish

T0 = 1_800_000_000_000


@pytest.fixture
def health(redis, scripts, keys, settings):
    s = settings.model_copy(update={"health_window_ms": 60_000, "health_threshold": 3,
                                    "cooldown_base_ms": 10_000, "cooldown_max_ms": 80_000})
    return AccountHealth(redis, scripts, keys, s)


async def state(redis, keys, account_id):
    raw = await redis.hgetall(keys.account(account_id))
    return {k.decode(): v.decode() for k, v in raw.items()}


async def fail_times(health, account_id, n, at):
    for i in range(n):
        await health.report(account_id, ErrorKind.TRANSIENT, now_ms=at + i)


async def test_cooldowns_grow_and_are_capped(redis, scripts, keys, health):
    acc = await make_account(scripts, keys)
    now, lengths = T0, []
    for _ in range(5):
        await fail_times(health, acc, 3, now)
        a = await state(redis, keys, acc)
        assert a["state"] == "cooling_down"
        lengths.append(int(a["cooldown_until"]) - (now + 2))
        now = int(a["cooldown_until"])
        await health.sweep(now_ms=now)
        assert (await state(redis, keys, acc))["state"] == "active"
    assert lengths == [10_000, 20_000, 40_000, 80_000, 80_000]


async def test_failures_below_threshold_or_outside_window_do_nothing(redis, scripts, keys, health):
    acc = await make_account(scripts, keys)
    await fail_times(health, acc, 2, T0)
    await health.report(acc, ErrorKind.TRANSIENT, now_ms=T0 + 61_000)  # the first two left the window
    assert (await state(redis, keys, acc))["state"] == "active"


async def test_retry_after_is_honoured_and_a_cooldown_never_shortened(redis, scripts, keys, health):
    acc = await make_account(scripts, keys)
    await health.report(acc, ErrorKind.RATE_LIMITED, retry_after_s=120, now_ms=T0)
    assert int((await state(redis, keys, acc))["cooldown_until"]) == T0 + 120_000
    await health.report(acc, ErrorKind.RATE_LIMITED, retry_after_s=5, now_ms=T0 + 1000)
    assert int((await state(redis, keys, acc))["cooldown_until"]) == T0 + 120_000
    await health.sweep(now_ms=T0 + 60_000)
    assert (await state(redis, keys, acc))["state"] == "cooling_down"
    await health.sweep(now_ms=T0 + 120_000)
    assert (await state(redis, keys, acc))["state"] == "active"


@pytest.mark.parametrize(("kind", "expected"), [(ErrorKind.CAPTCHA, "needs_captcha"),
                                                (ErrorKind.BANNED, "banned"),
                                                (ErrorKind.QUOTA, "auto_disabled")])
async def test_account_problems_change_state(redis, scripts, keys, health, kind, expected):
    owner = await make_user(redis, scripts, keys)
    acc = await make_account(scripts, keys, owner=owner)
    await health.report(acc, kind, now_ms=T0)
    assert (await state(redis, keys, acc))["state"] == expected
    assert await redis.zcard(keys.avail(owner, "midjourney", "fast")) == 0
    events = await redis.xrange(keys.account_events(owner))
    assert events[-1][1][b"state"] == expected.encode()  # the owner is notified


async def test_fast_hours_exhausted_means_relax_only(redis, scripts, keys, settings, health):
    u = await make_user(redis, scripts, keys, plan="premium")
    acc = await make_account(scripts, keys, capacity=5)
    await health.report(acc, ErrorKind.FAST_HOURS, now_ms=T0)
    fast = await enqueue(scripts, keys, u, lane="fast")
    relax = await enqueue(scripts, keys, u, lane="relax")
    out = await Dispatcher(redis, scripts, keys, settings).dispatch()
    assert [d.task_id for d in out] == [relax]
    assert (await task_fields(redis, keys, fast))["status"] == "pending"
    assert (await state(redis, keys, acc))["modes_before_fast_hours"] == "relax,fast,turbo"


async def test_operator_disabled_never_comes_back_on_its_own(redis, scripts, keys, settings, health):
    registry = AccountRegistry(redis, scripts, keys, settings)
    acc = await make_account(scripts, keys)
    await registry.pause(acc)
    await health.report(acc, ErrorKind.RATE_LIMITED, retry_after_s=1, now_ms=T0)
    await health.sweep(now_ms=T0 + 10_000)
    assert (await state(redis, keys, acc))["state"] == "disabled"
    assert await health.probe_all(registry, {"sim": AlwaysHealthy()}) == 0
    assert (await state(redis, keys, acc))["state"] == "disabled"


class AlwaysHealthy:
    async def probe(self, access):
        return None


class StillBroken:
    async def probe(self, access):
        raise ProviderError(ErrorKind.CAPTCHA, "still needs a captcha")


async def test_auto_disabled_returns_only_after_a_passing_probe(redis, scripts, keys, settings, health):
    registry = AccountRegistry(redis, scripts, keys, settings)
    captcha = await make_account(scripts, keys)
    banned = await make_account(scripts, keys)
    await health.report(captcha, ErrorKind.CAPTCHA, now_ms=T0)
    await health.report(banned, ErrorKind.BANNED, now_ms=T0)
    await health.sweep(now_ms=T0 + 10**9)
    assert (await state(redis, keys, captcha))["state"] == "needs_captcha"
    assert await health.probe_all(registry, {"sim": StillBroken()}) == 0
    assert await health.probe_all(registry, {"sim": AlwaysHealthy()}) == 1
    assert (await state(redis, keys, captcha))["state"] == "active"
    assert (await state(redis, keys, banned))["state"] == "banned"  # a ban is never probed away


async def test_ban_mid_flight_moves_the_task_and_charges_once(redis, scripts, keys, settings, health):
    u = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    first = await make_account(scripts, keys, capacity=5, priority=9)
    second = await make_account(scripts, keys, capacity=5, priority=1)
    task_id = await enqueue(scripts, keys, u, price=14)
    d = Dispatcher(redis, scripts, keys, settings)
    [a1] = await d.dispatch()
    assert a1.account_id == first
    await health.report(first, ErrorKind.BANNED)  # what the worker does on a ban ...
    await finish(scripts, keys, task_id, 1, "retry", blame=True)  # ... then it returns the attempt
    [a2] = await d.dispatch()
    assert (a2.account_id, a2.attempt) == (second, 2)
    await finish(scripts, keys, task_id, 2, "completed")
    w = await wallet(redis, keys, u, "mj_quota")
    assert (w["available"], w["frozen"], w["consumed"]) == (86, 0, 14)
    kinds = [e[1][b"kind"] for e in await redis.xrange(keys.ledger(u))]
    assert kinds.count(b"freeze") == 1 and kinds.count(b"charge") == 1


async def test_byoa_without_failover_fails_after_the_maximum_wait(redis, scripts, keys, settings, health):
    u = await make_user(redis, scripts, keys, plan="developer", failover=False)
    task_id = await enqueue(scripts, keys, u, pool="byoa", now=T0)
    await Dispatcher(redis, scripts, keys, settings).dispatch(now_ms=T0)
    assert await health.sweep(now_ms=T0 + settings.byoa_max_wait_ms - 1) == (0, 0)
    assert await health.sweep(now_ms=T0 + settings.byoa_max_wait_ms + 1) == (0, 1)
    t = await task_fields(redis, keys, task_id)
    assert t["status"] == "failed" and "failover" in json.loads(t["error"])["message"]
    assert await redis.llen(keys.flow(t["flow"])) == 0


async def test_cooled_down_account_is_used_again(redis, scripts, keys, settings, health):
    u = await make_user(redis, scripts, keys)
    acc = await make_account(scripts, keys, capacity=5)
    await health.report(acc, ErrorKind.RATE_LIMITED, retry_after_s=30, now_ms=T0)
    task_id = await enqueue(scripts, keys, u)
    d = Dispatcher(redis, scripts, keys, settings)
    assert await d.dispatch(now_ms=T0 + 1000) == []
    await health.sweep(now_ms=T0 + 30_000)
    assert [x.task_id for x in await d.dispatch(now_ms=T0 + 30_001)] == [task_id]
    assert (await state(redis, keys, acc))["state"] == AccountState.ACTIVE
