"""Several scheduler replicas and fake workers at once on 2,000 tasks from users on every plan:
caps (S1) and account capacity (S2) hold at every moment, each attempt is dispatched exactly once
and each task ends exactly once (S7, B4)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from redis.asyncio import Redis

from taskgate.errors import AlreadyFinal
from taskgate.scheduler.dispatcher import Dispatcher
from taskgate.store.scripts import Scripts
from tests.factories import CATALOGUE, enqueue, make_account, make_user, wallet
from tests.lua.test_task_lifecycle import finish

N_TASKS = 2000
REPLICAS = 3


class Observed:
    def __init__(self) -> None:
        self.running: Counter[str] = Counter()  # user -> attempts running now
        self.on_account: Counter[str] = Counter()
        self.max_running: Counter[str] = Counter()
        self.max_on_account: Counter[str] = Counter()
        self.dispatched: Counter[tuple[str, int]] = Counter()
        self.finished: Counter[str] = Counter()


async def fake_worker(scripts, keys, d, user, obs: Observed, rng: random.Random) -> None:
    obs.running[user] += 1
    obs.on_account[d.account_id] += 1
    obs.max_running[user] = max(obs.max_running[user], obs.running[user])
    obs.max_on_account[d.account_id] = max(obs.max_on_account[d.account_id], obs.on_account[d.account_id])
    await asyncio.sleep(rng.uniform(0, 0.01))
    outcome = rng.choice(["completed"] * 8 + ["failed", "retry"])
    obs.running[user] -= 1  # before finish: the slot is released inside finish
    obs.on_account[d.account_id] -= 1
    status = (await finish(scripts, keys, d.task_id, d.attempt, outcome, blame=False, max_attempts=5))[1]
    if status != "pending":
        obs.finished[d.task_id] += 1
    # a late duplicate finish from a confused worker is refused
    try:
        await finish(scripts, keys, d.task_id, d.attempt, "completed")
    except AlreadyFinal:
        pass
    except Exception as exc:  # StaleAttempt after a retry re-dispatched it
        assert getattr(exc, "status", None) == 409


async def replica(redis_url, keys, settings, owner, obs, stop, rng) -> None:
    client = Redis.from_url(redis_url)
    scripts = Scripts(client)
    # the fake workers take dispatches from the reply, not the job list: no back-pressure bound
    d = Dispatcher(client, scripts, keys, settings.model_copy(update={"dispatch_max_queued": 0}))
    workers = set()
    try:
        while not stop.is_set():
            got = await d.dispatch(16)
            for x in got:
                obs.dispatched[(x.task_id, x.attempt)] += 1
                t = asyncio.create_task(fake_worker(scripts, keys, x, owner[x.task_id], obs, rng))
                workers.add(t)
                t.add_done_callback(workers.discard)
            if not got:
                await asyncio.sleep(0.002)
        await asyncio.gather(*workers)
    finally:
        await client.aclose()


async def test_replicas_hold_caps_capacity_and_exactly_once(redis, redis_url, scripts, keys, settings):
    rng = random.Random(7)
    plans = ["free"] * 4 + ["developer"] * 3 + ["premium"] * 2
    users = {await make_user(redis, scripts, keys, plan=p, wallets={"mj_quota": 10_000}): p for p in plans}
    accounts = {await make_account(scripts, keys, capacity=c): c for c in (5, 10, 20)}
    owner: dict[str, str] = {}
    user_list = list(users)
    for i in range(N_TASKS):
        u = user_list[i % len(user_list)]
        lane = rng.choice(["fast", "fast", "turbo", "relax"])
        owner[await enqueue(scripts, keys, u, lane=lane, price=3)] = u
    obs, stop = Observed(), asyncio.Event()
    sampled_max: Counter[str] = Counter()

    async def sampler() -> None:
        while not stop.is_set():
            pipe = redis.pipeline(transaction=False)
            for u in user_list:
                pipe.zcard(keys.user_leases(u))
            for u, n in zip(user_list, await pipe.execute(), strict=True):
                sampled_max[u] = max(sampled_max[u], n)
            await asyncio.sleep(0.01)

    runs = [
        asyncio.create_task(replica(redis_url, keys, settings, owner, obs, stop, random.Random(i)))
        for i in range(REPLICAS)
    ]
    sample = asyncio.create_task(sampler())
    for _ in range(3000):
        await asyncio.sleep(0.02)
        if len(obs.finished) == N_TASKS:
            break
    stop.set()
    await asyncio.gather(*runs, sample)

    assert len(obs.finished) == N_TASKS and set(obs.finished.values()) == {1}
    assert set(obs.dispatched.values()) == {1}  # every attempt dispatched exactly once
    for u, plan in users.items():
        cap = CATALOGUE.plan(plan).concurrency
        assert obs.max_running[u] <= cap and sampled_max[u] <= cap, (plan, obs.max_running[u])
    assert max(obs.max_running[u] for u, p in users.items() if p == "free") == 3  # the cap was reached
    for acc, cap in accounts.items():
        assert obs.max_on_account[acc] <= cap
    # at rest: nothing frozen, no slot held, money conserved
    assert await redis.zcard(keys.leases()) == 0
    for u in users:
        w = await wallet(redis, keys, u, "mj_quota")
        assert w["frozen"] == 0
        assert w["available"] + w["consumed"] == w["deposited"] == 10_000
    assert sum(1 for c in obs.dispatched if c[1] > 1) > 0  # some retries really happened
