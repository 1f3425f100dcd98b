"""Account health (S9): cooldowns, states, the sweep, probes and notifications; time moved by the
scripts' clock override, never by sleeping."""

from __future__ import annotations

import pytest

from taskgate.models import AccountState
from taskgate.pool.health import Signal
from taskgate.providers.base import ErrorKind
from taskgate.scheduler.dispatcher import Dispatcher
from tests.factories import enqueue, make_account, make_user, task_fields
from tests.pool.conftest import T0, FakeProbe, account_hash, state_of


async def fail_times(health, account_id, n, at):
    for i in range(n):
        await health.report(account_id, ErrorKind.TRANSIENT, now_ms=at + i)


async def cooldown_length(redis, keys, health, acc, now):
    """Three transient failures from `now`; the cooldown they start, in ms from the last one."""
    await fail_times(health, acc, 3, now)
    a = await account_hash(redis, keys, acc)
    assert a["state"] == AccountState.COOLING_DOWN
    return int(a["cooldown_until"]) - (now + 2)


async def test_cooldowns_grow_and_are_capped(redis, scripts, keys, health):
    acc = await make_account(scripts, keys)
    now, lengths = T0, []
    for _ in range(5):
        lengths.append(await cooldown_length(redis, keys, health, acc, now))
        now = int((await account_hash(redis, keys, acc))["cooldown_until"])
        assert await health.sweep(now_ms=now - 1) == (0, 0)
        assert await state_of(redis, keys, acc) == AccountState.COOLING_DOWN
        assert await health.sweep(now_ms=now) == (1, 0)
        assert await state_of(redis, keys, acc) == AccountState.ACTIVE
    assert lengths == [10_000, 20_000, 40_000, 80_000, 80_000]


async def test_a_success_ends_the_streak_and_a_quiet_period_too(redis, scripts, keys, health):
    acc = await make_account(scripts, keys)
    assert await cooldown_length(redis, keys, health, acc, T0) == 10_000
    await health.sweep(now_ms=T0 + 10_002)
    assert await cooldown_length(redis, keys, health, acc, T0 + 10_002) == 20_000
    await health.sweep(now_ms=T0 + 30_004)
    await health.report(acc, None, now_ms=T0 + 30_005)  # an upstream run completed
    assert await cooldown_length(redis, keys, health, acc, T0 + 30_006) == 10_000
    await health.sweep(now_ms=T0 + 40_008)
    # no success, but the next cooldown starts long (> max) after the last one ended
    assert await cooldown_length(redis, keys, health, acc, T0 + 40_008 + 80_001) == 10_000


async def test_failures_below_threshold_or_outside_window_do_nothing(redis, scripts, keys, health):
    acc = await make_account(scripts, keys)
    await fail_times(health, acc, 2, T0)
    await health.report(acc, ErrorKind.TRANSIENT, now_ms=T0 + 61_000)  # the first two left the window
    assert await state_of(redis, keys, acc) == AccountState.ACTIVE
    await health.report(acc, ErrorKind.INCORRECT, now_ms=T0 + 61_001)  # the task's fault, not the account's
    await health.report(acc, None, now_ms=T0 + 61_002)  # a success does not hide the failures
    assert await state_of(redis, keys, acc) == AccountState.ACTIVE
    await health.report(acc, ErrorKind.TRANSIENT, now_ms=T0 + 61_003)
    assert await state_of(redis, keys, acc) == AccountState.ACTIVE
    await health.report(acc, ErrorKind.TRANSIENT, now_ms=T0 + 61_004)
    assert await state_of(redis, keys, acc) == AccountState.COOLING_DOWN


async def test_failures_of_calls_made_before_a_cooldown_do_not_extend_it(redis, scripts, keys, health):
    acc = await make_account(scripts, keys, capacity=10)
    await fail_times(health, acc, 10, T0)  # ten tasks in flight all fail in the same outage
    a = await account_hash(redis, keys, acc)
    assert int(a["cooldown_until"]) == T0 + 2 + 10_000


async def test_retry_after_is_honoured_and_a_cooldown_never_shortened(redis, scripts, keys, health):
    acc = await make_account(scripts, keys)
    await health.report(acc, ErrorKind.RATE_LIMITED, retry_after_s=120, now_ms=T0)
    assert int((await account_hash(redis, keys, acc))["cooldown_until"]) == T0 + 120_000
    await health.report(acc, ErrorKind.RATE_LIMITED, retry_after_s=5, now_ms=T0 + 1000)
    await fail_times(health, acc, 3, T0 + 2000)
    assert int((await account_hash(redis, keys, acc))["cooldown_until"]) == T0 + 120_000
    await health.sweep(now_ms=T0 + 60_000)
    assert await state_of(redis, keys, acc) == AccountState.COOLING_DOWN
    await health.sweep(now_ms=T0 + 120_000)
    assert await state_of(redis, keys, acc) == AccountState.ACTIVE


async def test_a_longer_retry_after_extends_a_cooldown(redis, scripts, keys, health):
    acc = await make_account(scripts, keys)
    await fail_times(health, acc, 3, T0)
    await health.report(acc, ErrorKind.RATE_LIMITED, 300, now_ms=T0 + 5)
    assert int((await account_hash(redis, keys, acc))["cooldown_until"]) == T0 + 300_005
    assert await health.sweep(now_ms=T0 + 12_002) == (0, 0)  # the first deadline passed: still cooling
    assert await state_of(redis, keys, acc) == AccountState.COOLING_DOWN


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (ErrorKind.CAPTCHA, AccountState.NEEDS_CAPTCHA),
        (ErrorKind.BANNED, AccountState.BANNED),
        (ErrorKind.QUOTA, AccountState.AUTO_DISABLED),
    ],
)
async def test_account_problems_change_state(redis, scripts, keys, health, kind, expected):
    owner = await make_user(redis, scripts, keys)
    acc = await make_account(scripts, keys, owner=owner)
    assert await redis.zcard(keys.avail(owner, "midjourney", "fast")) == 1
    assert await health.report(acc, kind, now_ms=T0) == (AccountState.ACTIVE, expected)
    assert await state_of(redis, keys, acc) == expected
    assert await redis.zcard(keys.avail(owner, "midjourney", "fast")) == 0
    await health.sweep(now_ms=T0 + 10**9)  # never returns by time
    assert await state_of(redis, keys, acc) == expected


async def test_health_only_makes_a_state_worse(redis, scripts, keys, health):
    acc = await make_account(scripts, keys)
    await health.report(acc, ErrorKind.BANNED, now_ms=T0)
    await fail_times(health, acc, 3, T0 + 1)  # tasks still in flight on it fail afterwards
    await health.report(acc, ErrorKind.RATE_LIMITED, 1, now_ms=T0 + 5)
    await health.report(acc, ErrorKind.CAPTCHA, now_ms=T0 + 6)
    await health.report(acc, Signal.PROBE_PASSED, now_ms=T0 + 7)
    await health.sweep(now_ms=T0 + 10**9)
    assert await state_of(redis, keys, acc) == AccountState.BANNED
    captcha = await make_account(scripts, keys)
    await health.report(captcha, ErrorKind.CAPTCHA, now_ms=T0)
    await health.report(captcha, ErrorKind.RATE_LIMITED, 1, now_ms=T0 + 1)
    await health.sweep(now_ms=T0 + 10**9)
    assert await state_of(redis, keys, captcha) == AccountState.NEEDS_CAPTCHA


async def test_unknown_accounts_are_ignored(health):
    assert await health.report("no-such-account", ErrorKind.BANNED, now_ms=T0) == ("", "")


async def test_fast_hours_exhausted_means_relax_only(redis, scripts, keys, settings, health):
    u = await make_user(redis, scripts, keys, plan="premium")
    acc = await make_account(scripts, keys, capacity=5)
    await health.report(acc, ErrorKind.FAST_HOURS, now_ms=T0)
    fast = await enqueue(scripts, keys, u, lane="fast")
    relax = await enqueue(scripts, keys, u, lane="relax")
    out = await Dispatcher(redis, scripts, keys, settings).dispatch()
    assert [d.task_id for d in out] == [relax]
    assert (await task_fields(redis, keys, fast))["status"] == "pending"
    a = await account_hash(redis, keys, acc)
    assert (a["state"], a["modes"], a["modes_before_fast_hours"]) == ("active", "relax", "relax,fast,turbo")
    await health.report(acc, ErrorKind.FAST_HOURS, now_ms=T0 + 1)  # again: the originals are kept
    assert (await account_hash(redis, keys, acc))["modes_before_fast_hours"] == "relax,fast,turbo"
    events = await redis.xrange(keys.account_events("shared"))
    assert [e[1][b"reason"] for e in events] == [b"fast hours exhausted: relax only"]


async def test_fast_hours_never_add_relax_to_an_account_without_it(redis, scripts, keys, health):
    acc = await make_account(scripts, keys, modes="fast,turbo")
    await health.report(acc, ErrorKind.FAST_HOURS, now_ms=T0)
    a = await account_hash(redis, keys, acc)
    assert (a["modes"], a["modes_before_fast_hours"]) == ("", "fast,turbo")
    for mode in ("relax", "fast", "turbo"):
        assert await redis.zcard(keys.avail("shared", "midjourney", mode)) == 0


async def test_cooled_down_account_is_used_again(redis, scripts, keys, settings, health):
    u = await make_user(redis, scripts, keys)
    acc = await make_account(scripts, keys, capacity=5)
    await health.report(acc, ErrorKind.RATE_LIMITED, retry_after_s=30, now_ms=T0)
    task_id = await enqueue(scripts, keys, u)
    d = Dispatcher(redis, scripts, keys, settings)
    assert await d.dispatch(now_ms=T0 + 1000) == []
    assert await health.sweep(now_ms=T0 + 30_000) == (1, 0)
    assert [x.task_id for x in await d.dispatch(now_ms=T0 + 30_001)] == [task_id]
    assert await state_of(redis, keys, acc) == AccountState.ACTIVE


async def test_operator_disabled_never_comes_back_on_its_own(redis, scripts, keys, health, registry):
    acc = await make_account(scripts, keys)
    await health.report(acc, ErrorKind.CAPTCHA, now_ms=T0)
    await registry.pause(acc)  # the operator takes over
    for kind in (ErrorKind.RATE_LIMITED, ErrorKind.BANNED, Signal.PROBE_PASSED, None):
        assert await health.report(acc, kind, 1, now_ms=T0 + 1) == ("disabled", "disabled")
    await health.sweep(now_ms=T0 + 10**9)
    probe = FakeProbe()
    assert await health.probe_all(registry, {"sim": probe}) == 0
    assert probe.probed == []
    assert await state_of(redis, keys, acc) == AccountState.DISABLED
    await registry.resume(acc)  # only the operator brings it back
    assert await state_of(redis, keys, acc) == AccountState.ACTIVE


@pytest.mark.parametrize("kind", [ErrorKind.CAPTCHA, ErrorKind.QUOTA])
async def test_auto_disabled_returns_only_after_a_passing_probe(redis, scripts, keys, health, registry, kind):
    broken = await make_account(scripts, keys)
    banned = await make_account(scripts, keys)
    healthy = await make_account(scripts, keys)
    await health.report(broken, kind, now_ms=T0)
    await health.report(banned, ErrorKind.BANNED, now_ms=T0)
    await health.sweep(now_ms=T0 + 10**9)
    failing = FakeProbe(ErrorKind.TRANSIENT)
    assert await health.probe_all(registry, {"sim": failing}) == 0
    assert failing.probed == [broken]  # banned and active accounts are not probed
    assert await state_of(redis, keys, broken) != AccountState.ACTIVE
    assert await health.probe_all(registry, {"sim": FakeProbe()}) == 1
    assert await state_of(redis, keys, broken) == AccountState.ACTIVE
    assert await state_of(redis, keys, banned) == AccountState.BANNED  # a ban is never probed away
    assert await state_of(redis, keys, healthy) == AccountState.ACTIVE


async def test_a_failing_probe_can_make_it_worse(redis, scripts, keys, health, registry):
    acc = await make_account(scripts, keys)
    await health.report(acc, ErrorKind.CAPTCHA, now_ms=T0)
    assert await health.probe_all(registry, {"sim": FakeProbe(ErrorKind.BANNED)}) == 0
    assert await state_of(redis, keys, acc) == AccountState.BANNED


async def test_a_passing_probe_does_not_shorten_a_cooldown(redis, scripts, keys, health, registry):
    cooling = await make_account(scripts, keys)
    both = await make_account(scripts, keys)
    await health.report(cooling, ErrorKind.RATE_LIMITED, 3600)
    await health.report(both, ErrorKind.RATE_LIMITED, 3600)
    await health.report(both, ErrorKind.CAPTCHA)
    assert await health.probe_all(registry, {"sim": FakeProbe()}) == 0
    assert await state_of(redis, keys, cooling) == AccountState.COOLING_DOWN
    a = await account_hash(redis, keys, both)  # captcha solved, but its cooldown still runs
    assert a["state"] == AccountState.COOLING_DOWN
    await health.sweep(now_ms=int(a["cooldown_until"]))
    assert await state_of(redis, keys, both) == AccountState.ACTIVE


async def test_owner_gets_account_events(redis, scripts, keys, health):
    owner = await make_user(redis, scripts, keys, plan="developer")
    acc = await make_account(scripts, keys, owner=owner)
    shared = await make_account(scripts, keys)
    await health.report(acc, ErrorKind.RATE_LIMITED, 10, now_ms=T0)
    await health.sweep(now_ms=T0 + 10_000)
    await health.report(acc, ErrorKind.CAPTCHA, now_ms=T0 + 10_001)
    await health.report(acc, ErrorKind.CAPTCHA, now_ms=T0 + 10_002)  # no change, no event
    await health.report(shared, ErrorKind.BANNED, now_ms=T0 + 10_003)
    await health.report(acc, ErrorKind.BANNED, now_ms=T0 + 10_004)
    events = [e[1] for e in await redis.xrange(keys.account_events(owner))]
    assert [(e[b"account_id"].decode(), e[b"old_state"].decode(), e[b"state"].decode()) for e in events] == [
        (acc, "active", "cooling_down"),
        (acc, "cooling_down", "active"),
        (acc, "active", "needs_captcha"),
        (acc, "needs_captcha", "banned"),
    ]
    assert {e[b"by"] for e in events} == {b"health"}
    assert events[-1][b"reason"] == b"banned"
