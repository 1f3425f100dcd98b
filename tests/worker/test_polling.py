"""Adaptive polling (worker/polling.py): expected durations, the schedule, the per-account cap,
and the real worker polling a real simulator by them."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from taskgate.models import CreateTaskRequest
from taskgate.services import Services
from taskgate.settings import Settings
from taskgate.worker.polling import (
    AccountPollLimiter,
    DurationsError,
    ExpectedDurations,
    Polling,
    PollSchedule,
)
from tests.redis_server import free_port
from tests.worker.stack import PollLog, running_stack


def test_shipped_durations_follow_model_and_mode():
    d = ExpectedDurations.load()
    assert d.expected_s("midjourney", "relax") == 300 and d.expected_s("midjourney", "fast") == 60
    assert d.expected_s("Qubico/flux1-schnell", "fast") == 8
    assert d.expected_s("Qubico/flux1-schnell", "relax") == d.default["relax"]  # mode from [default]
    assert d.expected_s("no-such-model", "turbo") == d.default["turbo"]
    assert d.expected_s("no-such-model", "odd-mode") == d.default["fast"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[default]\nfast = 'soon'\n", "fast must be a number of seconds"),
        ("[default]\nrelax = 10\n", "needs at least 'fast'"),
        ("[default]\nfast = 10\n[models.x]\nfast = -1\n", "[models.x]: fast must be a number"),
        ("[default\n", "durations.toml"),
    ],
)
def test_bad_durations_files_are_refused_clearly(tmp_path: Path, text: str, problem: str):
    path = tmp_path / "durations.toml"
    path.write_text(text)
    with pytest.raises(DurationsError, match=problem.replace("[", r"\[")):
        ExpectedDurations.load(path)


def schedule(expected_s: float, seed: int = 1, floor: float = 0.05, ceiling: float = 10.0) -> PollSchedule:
    return PollSchedule(expected_s, floor, ceiling, random.Random(seed), started_at=0.0)


def test_first_poll_at_half_the_expected_duration_with_jitter():
    firsts = {schedule(60, seed).first_delay(resumed=False) for seed in range(50)}
    assert all(24 <= f <= 36 for f in firsts) and len(firsts) > 40  # spread, not in lock step
    assert schedule(60).first_delay(resumed=True) == 0.0  # a resumed job may be done already
    assert schedule(0).first_delay(resumed=False) == 0.0


def test_intervals_grow_with_the_wait_within_bounds():
    s = schedule(20, floor=0.05, ceiling=10)
    assert 1.6 <= s.next_delay(now=5) <= 2.4  # a tenth of the expected duration
    assert 4.8 <= s.next_delay(now=60) <= 7.2  # overrunning: a tenth of the time waited
    assert 8 <= s.next_delay(now=3600) <= 12  # never past the ceiling (+ jitter)
    assert 0.04 <= schedule(0).next_delay(now=0.01) <= 0.06  # never under the floor


async def test_relax_midjourney_is_not_polled_every_second(settings: Settings):
    polling = Polling(settings, rng=random.Random(3))
    s = polling.schedule("goapi", "midjourney", "relax")
    assert s.first_delay(resumed=False) >= 120
    assert s.next_delay(now=s.started_at + 150) >= settings.upstream_poll_max_interval_s * 0.8
    # the simulator's expectations are the worker's sim latency settings
    assert polling.expected_s("sim", "midjourney", "relax") == settings.sim_latency_relax_s


async def test_limiter_spaces_polls_per_account_and_keeps_accounts_apart():
    limiter = AccountPollLimiter(per_s=100)
    t0 = asyncio.get_running_loop().time()
    await asyncio.gather(*(limiter.acquire("a") for _ in range(20)))
    assert asyncio.get_running_loop().time() - t0 >= 19 * 0.01 * 0.99
    assert limiter._next_free["a"] >= t0 + 20 * 0.01
    before_b = asyncio.get_running_loop().time()
    await limiter.acquire("b")  # another account does not queue behind "a"
    assert limiter._next_free["b"] <= before_b + 0.01 + 0.05
    unlimited = AccountPollLimiter(per_s=0)
    await asyncio.gather(*(unlimited.acquire("a") for _ in range(100)))
    assert unlimited._next_free == {}


# --- the real worker against a real simulator, counting the polls it receives


async def _run_tasks(services: Services, n: int, prompt: str) -> list[str]:
    user_id, _ = await services.users.create("premium", wallets={"mj_quota": 10_000})
    user = await services.users.get(user_id)
    req = CreateTaskRequest(
        model="midjourney", task_type="imagine", input={"prompt": prompt, "process_mode": "fast"}
    )
    ids = [str((await services.tasks.create(user, req))["task_id"]) for _ in range(n)]
    for _ in range(1500):
        records = [await services.tasks.load(i) for i in ids]
        if all(r is not None and r.status in ("completed", "failed") for r in records):
            assert all(r is not None and r.status == "completed" for r in records)
            return [r.upstream_id for r in records if r is not None]
        await asyncio.sleep(0.02)
    raise AssertionError("tasks did not finish")


@pytest.fixture
def poll_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "sim_port": free_port(),
            "sim_latency_fast_s": 1.0,
            "upstream_poll_interval_s": 0.02,
            "renew_interval_s": 0.2,
            "sweep_interval_s": 0.2,
        }
    )


async def test_worker_first_polls_at_half_the_expected_duration(poll_settings: Settings):
    log = PollLog()
    async for services in running_stack(poll_settings, log, "poll-test"):
        submitted = asyncio.get_running_loop().time()
        [upstream_id] = await _run_tasks(services, 1, "p [sim duration=1.0]")
        # expected 1.0 s: no poll before 0.5 s - 20 % jitter (today's fixed 50 ms would be ~10 polls by then)
        assert log.polls[upstream_id][0] - submitted >= 0.4


async def test_worker_respects_the_per_account_poll_cap(poll_settings: Settings):
    update = {"sim_latency_fast_s": 0.0, "upstream_polls_per_s_per_account": 5}
    settings = poll_settings.model_copy(update=update)
    log = PollLog()
    async for services in running_stack(settings, log, "poll-test"):
        await _run_tasks(services, 6, "p [sim duration=0.3]")
        gaps = [b - a for a, b in zip(log.all_polls, log.all_polls[1:], strict=False)]
        assert len(log.all_polls) >= 6 and min(gaps) >= 0.2 * 0.75  # 5/s: 200 ms apart (transit slack)
