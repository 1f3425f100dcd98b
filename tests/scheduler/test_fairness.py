"""Fairness (S4) and priority (S3) at scale, against real Redis through dispatch_tasks.lua.

Every user is on the same plan with its cap lifted and one shared account has room for every
task, so that only the rotation and the lane rules decide the order of dispatches."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter

import pytest

from taskgate.scheduler.dispatcher import Dispatcher
from tests.factories import enqueue, make_account, make_user

BIG = 100_000
T0 = 1_800_000_000_000  # a fixed clock (ms) for the tests that move time


def dispatcher(redis, scripts, keys, settings, **changes):
    # no worker takes the jobs here: no back-pressure bound on jobs waiting for a worker
    return Dispatcher(redis, scripts, keys, settings.model_copy(update={"dispatch_max_queued": 0, **changes}))


async def users(redis, scripts, keys, n, **fields):
    return [await make_user(redis, scripts, keys, plan="premium", cap=BIG, **fields) for _ in range(n)]


async def enqueue_many(scripts, keys, user, n, **kw) -> list[str]:
    out: list[str] = []
    for start in range(0, n, 200):  # concurrent within a chunk: order inside one user's flow is free
        out += await asyncio.gather(*(enqueue(scripts, keys, user, **kw) for _ in range(min(200, n - start))))
    return out


class Recorder:
    """Runs dispatch rounds of varying sizes and keeps every decision in order."""

    def __init__(self, d: Dispatcher) -> None:
        self.d, self.decisions = d, []
        self.sizes = itertools.cycle([1, 7, 64, 3, 33])

    async def run(self, n: int, *, now_ms: int | None = None) -> list[str]:
        got: list[str] = []
        while len(got) < n:
            out = await self.d.dispatch(min(next(self.sizes), n - len(got)), now_ms=now_ms)
            assert out, "capacity exists, so every round must dispatch"
            got += [x.task_id for x in out]
        self.decisions += got
        return got


async def test_light_user_first_task_within_one_turn_per_active_user(redis, scripts, keys, settings):
    heavy, *lights = await users(redis, scripts, keys, 21)
    await make_account(scripts, keys, capacity=BIG)
    await enqueue_many(scripts, keys, heavy, 5000)
    rec = Recorder(dispatcher(redis, scripts, keys, settings))
    await rec.run(50)  # the heavy user's backlog is being served
    queued_at: dict[str, int] = {}
    for i, light in enumerate(lights):
        ids = [await enqueue(scripts, keys, light) for _ in range(5)]
        queued_at[ids[0]] = len(rec.decisions)
        await rec.run(1 + i % 4)  # the lights arrive while earlier ones are still backlogged
    await rec.run(200)
    position = {task_id: i for i, task_id in enumerate(rec.decisions)}
    waits = {task_id: position[task_id] - at for task_id, at in queued_at.items()}
    assert max(waits.values()) < 21, waits  # served among the first 21 decisions after it was queued


async def test_backlogged_users_share_equally_including_late_joiners(redis, scripts, keys, settings):
    early, late = await users(redis, scripts, keys, 3), await users(redis, scripts, keys, 3)
    await make_account(scripts, keys, capacity=BIG)
    owner = {}
    for u in early:
        owner |= dict.fromkeys(await enqueue_many(scripts, keys, u, 700), u)
    rec = Recorder(dispatcher(redis, scripts, keys, settings))
    await rec.run(300)  # the early users ran alone for a while: the late ones get no credit for it
    for u in late:
        owner |= dict.fromkeys(await enqueue_many(scripts, keys, u, 600), u)
    window = await rec.run(3000)  # every user still has work throughout (each gets ~500)
    counts = Counter(owner[t] for t in window)
    for u in early + late:
        assert abs(counts[u] / 500 - 1) <= 0.05, (counts[u], u in late)


async def test_backlogged_users_share_by_weight(redis, scripts, keys, settings):
    weights = [1, 2, 3, 4]
    weighted = [(await users(redis, scripts, keys, 1, weight=w))[0] for w in weights]
    await make_account(scripts, keys, capacity=BIG)
    owner = {}
    for u, w in zip(weighted, weights, strict=True):
        owner |= dict.fromkeys(await enqueue_many(scripts, keys, u, 250 * w), u)
    window = await Recorder(dispatcher(redis, scripts, keys, settings)).run(2000)  # all still backlogged
    counts = Counter(owner[t] for t in window)
    for u, w in zip(weighted, weights, strict=True):
        expected = 2000 * w / sum(weights)
        assert abs(counts[u] / expected - 1) <= 0.05, (w, counts[u], expected)


@pytest.mark.parametrize("share", [0.10, 0.25])
async def test_fast_first_and_relax_keeps_its_floor_share(redis, scripts, keys, settings, share):
    us = await users(redis, scripts, keys, 3)
    await make_account(scripts, keys, capacity=BIG)
    lane_of = {}
    for lane in ("relax", "fast"):  # relax queued first: still fast goes first
        for u in us:
            lane_of |= dict.fromkeys(await enqueue_many(scripts, keys, u, 300, lane=lane), lane)
    rec = Recorder(dispatcher(redis, scripts, keys, settings, relax_share=share))
    lanes = [lane_of[t] for t in await rec.run(800)]  # both lanes stay backlogged (900 each)
    assert lanes[0] == "fast"
    assert abs(lanes.count("relax") / len(lanes) - share) <= 0.02
    for start in range(0, len(lanes), 200):  # the floor holds all along, not only on average
        window = lanes[start : start + 200]
        assert abs(window.count("relax") / len(window) - share) <= 0.02, start


@pytest.mark.parametrize("share", [0.0, 0.01])
async def test_no_relax_task_waits_past_the_maximum_while_capacity_exists(
    redis, scripts, keys, settings, share
):
    max_wait, step = 10_000, 1000
    us = await users(redis, scripts, keys, 3)
    await make_account(scripts, keys, capacity=BIG)
    for u in us[:2]:
        await enqueue_many(scripts, keys, u, 400, now=T0)  # 800 fast tasks: more than 60 rounds of 10
    rec = Recorder(dispatcher(redis, scripts, keys, settings, relax_share=share, relax_max_wait_ms=max_wait))
    queued: dict[str, int] = {}
    served: dict[str, int] = {}
    for r in range(60):
        now = T0 + r * step
        if r < 30:
            for u in us:
                queued[await enqueue(scripts, keys, u, lane="relax", now=now)] = now
        for task_id in await rec.run(10, now_ms=now):
            if task_id in queued:
                served[task_id] = now
    assert set(served) == set(queued)  # every relax task got its turn while fast work still waited
    waits = [served[t] - queued[t] for t in queued]
    assert max(waits) <= max_wait + step  # the first round after the maximum at the latest
    assert min(waits) > 0  # and fast went first: none was served in the round it arrived
