"""S10/S5/B3 as a property of the scheduler against a real Redis: random account outages, bans,
credential rejections, cooldowns, operator pauses, task failures (exclusions), pins and cancels.

After every step, once the sweep and dispatch have settled: no task waits while an account it may
use has a free slot (S5, with S8's rule that a task goes back to an account it failed on only when
no other is usable), and money is conserved for every user (B3). At the end, with the faults
stopped and workers finishing what runs, every task reaches a final state within its bound:
``pending_max_wait_ms`` for a task nothing can serve, the longest cooldown for one that waits for
one. Time is the scripts' clock override; nothing sleeps. The figures of the last run are written
to ``PROPERTY_FIGURES`` (run with ``-s`` to see them)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from taskgate.pool.health import AccountHealth
from taskgate.providers.base import ErrorKind
from taskgate.scheduler.dispatcher import Dispatcher
from taskgate.settings import Settings
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts
from tests.factories import enqueue, examples, make_account, make_user, wallet

T0 = 1_800_000_000_000
MAX_WAIT, COOLDOWN_MAX, STEP = 30_000, 40_000, 5_000
INITIAL, PRICE = 10_000, 14
PROPERTY_FIGURES: dict[str, Any] = {"examples": 0, "tasks": 0, "faults": 0, "worst_ms": 0, "reasons": set()}

LANES = st.sampled_from(["fast", "fast", "relax", "turbo"])
ENQUEUE = st.tuples(
    st.just("enqueue"), st.integers(0, 2), LANES, st.sampled_from(["ppu", "ppu", "byoa", "pin"])
)
FINISH = st.tuples(
    st.just("finish"), st.integers(0, 50), st.sampled_from(["completed", "retry", "retry", "incorrect"])
)
OPS = st.one_of(  # repeated entries weigh the mix towards work
    ENQUEUE,
    ENQUEUE,
    ENQUEUE,
    FINISH,
    FINISH,
    st.tuples(
        st.just("fault"),
        st.integers(0, 3),
        st.sampled_from(
            ["transient", "rate_limited", "banned", "credentials_rejected", "pause", "resume", "new_key"]
        ),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 50), st.just("")),
    st.tuples(st.just("tick"), st.integers(0, 3 * STEP), st.just("")),
)


@dataclass
class World:
    redis: Redis
    scripts: Scripts
    keys: Keys
    settings: Settings
    now: int = T0
    users: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    faults: int = 0

    @property
    def dispatcher(self) -> Dispatcher:
        return Dispatcher(self.redis, self.scripts, self.keys, self.settings)

    @property
    def health(self) -> AccountHealth:
        return AccountHealth(self.redis, self.scripts, self.keys, self.settings)

    async def hash(self, key: str) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in (await self.redis.hgetall(key)).items()}


async def build(redis: Redis, redis_url: str, modes: list[str], caps: list[int]) -> World:
    keys = Keys(f"t:{uuid.uuid4().hex[:12]}")
    cfg = Settings(
        redis_url=redis_url,
        key_prefix=keys.prefix,
        pending_max_wait_ms=MAX_WAIT,
        cooldown_base_ms=STEP,
        cooldown_max_ms=COOLDOWN_MAX,
        health_threshold=2,
        byoa_max_wait_ms=10**9,
        max_attempts=3,
    )
    w = World(redis, Scripts(redis), keys, cfg)
    for cap in caps:
        w.users.append(
            await make_user(redis, w.scripts, keys, plan="premium", cap=cap, wallets={"mj_quota": INITIAL})
        )
    for i, mode_set in enumerate(modes):  # three shared accounts, one BYOA account of user 0
        owner = w.users[0] if i == 3 else "shared"
        capacity = 1 + i // 3
        w.accounts.append(await make_account(w.scripts, keys, owner=owner, modes=mode_set, capacity=capacity))
    return w


async def apply(w: World, op: tuple[Any, ...]) -> None:
    kind, a, b = op[0], op[1], op[2]
    if kind == "enqueue":
        pool, bot = ("byoa", w.accounts[3]) if op[3] == "pin" else (op[3], "")
        user = w.users[0] if pool == "byoa" else w.users[a]
        w.tasks.append(
            await enqueue(w.scripts, w.keys, user, lane=b, pool=pool, bot=bot, price=PRICE, now=w.now)
        )
    elif kind == "finish":
        running = [t for t in w.tasks if (await w.hash(w.keys.task(t)))["status"] == "processing"]
        if running:
            await finish(w, running[a % len(running)], b)
    elif kind == "fault":
        w.faults += 1
        await fault(w, w.accounts[a], b)
    elif kind == "cancel" and w.tasks:
        task_id = w.tasks[a % len(w.tasks)]
        t = await w.hash(w.keys.task(task_id))
        await w.scripts.call(
            "cancel_task", keys=[w.keys.task(task_id)], args=[w.keys.base, w.now, task_id, t["user"]]
        )
    elif kind == "tick":
        w.now += a


async def finish(w: World, task_id: str, outcome: str) -> None:
    t = await w.hash(w.keys.task(task_id))
    if outcome == "retry":  # an upstream failure: the account is to blame, and its health hears of it
        w.faults += 1
        await w.health.report(t["account"], ErrorKind.TRANSIENT, now_ms=w.now)
    await w.scripts.call(
        "finish_task",
        keys=[w.keys.task(task_id), w.keys.task_failed_accounts(task_id)],
        args=[
            w.keys.base,
            w.now,
            task_id,
            t["attempt"],
            outcome,
            "",
            "",
            w.settings.max_attempts,
            "1" if outcome == "retry" else "0",
        ],
    )


async def fault(w: World, acc: str, what: str) -> None:
    if what in ("pause", "resume"):
        state = "disabled" if what == "pause" else "active"
        await w.scripts.call(
            "set_account_state",
            keys=[w.keys.account(acc)],
            args=[w.keys.base, w.now, acc, state, 0, "operator", what],
        )
    elif what == "new_key":
        keys = [w.keys.account(acc), w.keys.accounts(), w.keys.account_secret(acc)]
        await w.scripts.call("put_account", keys=keys, args=[w.keys.base, w.now, acc, "{}", f"k-{w.now}"])
    else:
        retry_after = 7.5 if what == "rate_limited" else None
        await w.health.report(acc, ErrorKind(what), retry_after, now_ms=w.now)


async def settle(w: World) -> None:
    await w.health.sweep(now_ms=w.now)
    for _ in range(100):
        if not await w.dispatcher.dispatch(now_ms=w.now):
            return
    raise AssertionError("dispatch never settled")


async def may_use(w: World, t: dict[str, str], accs: dict[str, dict[str, str]]) -> list[str]:
    """Accounts with a free slot that S8/S10 let this pending task use now."""
    if t["pool"] == "ppu":
        user = await w.hash(w.keys.user(t["user"]))
        if await w.redis.zcard(w.keys.user_leases(t["user"])) >= int(user["cap"]):
            return []
    owner = "shared" if t["pool"] == "ppu" else t["user"]
    serving = {
        i: a
        for i, a in accs.items()
        if a["owner"] == owner
        and t["lane"] in a["modes"].split(",")
        and usable(a, w.now)
        and (not t.get("bot_id") or i == t["bot_id"])
    }
    failed = {m.decode() for m in await w.redis.smembers(w.keys.task_failed_accounts(t["id"]))}
    if not t.get("bot_id") and any(i not in failed for i in serving):
        serving = {i: a for i, a in serving.items() if i not in failed}
    return [
        i for i, a in serving.items() if int(a["capacity"]) > await w.redis.zcard(w.keys.account_leases(i))
    ]


def usable(a: dict[str, str], now: int) -> bool:
    return a["state"] == "active" or (a["state"] == "cooling_down" and int(a["cooldown_until"]) <= now)


async def check(w: World) -> None:
    accs = {i: await w.hash(w.keys.account(i)) for i in w.accounts}
    for task_id in w.tasks:
        t = await w.hash(w.keys.task(task_id))
        if t["status"] == "pending":
            free = await may_use(w, t, accs)
            assert not free, f"S5: {task_id} waits while {free} is free"
            reason = t["wait"] if t.get("aside") == "1" else await w.redis.hget(w.keys.flow_wait(), t["flow"])
            reason = reason.decode() if isinstance(reason, bytes) else reason
            PROPERTY_FIGURES["reasons"].add(reason or "queued")
    for user in w.users:  # B3: nothing created or lost (no top-ups after the start)
        m = await wallet(w.redis, w.keys, user, "mj_quota")
        assert m["available"] + m["frozen"] + m["consumed"] == INITIAL, m


async def drain(w: World) -> int:
    """Faults stop, workers finish what runs; returns how long (simulated ms) the last task took."""
    stop = w.now
    while True:
        await settle(w)
        states = [await w.hash(w.keys.task(t)) for t in w.tasks]
        running = [t for t in states if t["status"] == "processing"]
        for t in running:  # a backlog drains at once: the bound is about waiting, not queue length
            await finish(w, t["id"], "completed")
        if running:
            continue
        if all(t["status"] in ("completed", "failed") for t in states):
            return w.now - stop
        assert w.now - stop <= MAX_WAIT + COOLDOWN_MAX + 4 * STEP, "a task never ended"
        w.now += STEP


async def scenario(redis_url: str, modes: list[str], caps: list[int], ops: list[tuple[Any, ...]]) -> None:
    redis = Redis.from_url(redis_url)
    keys = None
    try:
        w = await build(redis, redis_url, modes, caps)
        keys = w.keys
        for op in ops:
            await apply(w, op)
            await settle(w)
            await check(w)
        await drain(w)
        await check(w)
        worst = 0
        for task_id in w.tasks:
            t = await w.hash(w.keys.task(task_id))
            worst = max(worst, int(t["ended_ms"]) - int(t["created_ms"]))
            assert t["settled"] == "1"
        for user in w.users:
            assert (await wallet(redis, w.keys, user, "mj_quota"))["frozen"] == 0  # at rest (B3)
        PROPERTY_FIGURES["examples"] += 1
        PROPERTY_FIGURES["tasks"] += len(w.tasks)
        PROPERTY_FIGURES["faults"] += w.faults
        PROPERTY_FIGURES["worst_ms"] = max(PROPERTY_FIGURES["worst_ms"], worst)
    finally:
        if keys is not None:
            async for key in redis.scan_iter(match=keys.pattern(), count=1000):
                await redis.delete(key)
        await redis.aclose()


@pytest.mark.slow
@settings(
    max_examples=examples(30),  # TASKGATE_PROPERTY_SCALE multiplies them for a long run
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    modes=st.lists(
        st.sampled_from(
            ["relax", "fast", "relax,fast", "fast,turbo", "relax,fast,turbo", "relax,fast,turbo"]
        ),
        min_size=4,
        max_size=4,
    ),
    caps=st.lists(st.integers(1, 3), min_size=3, max_size=3),
    ops=st.lists(OPS, min_size=20, max_size=80),
)
@example(  # S10: x fails on a while b and c are busy; y, behind x in its flow, takes a at once
    modes=["relax,fast,turbo"] * 4,
    caps=[3, 3, 3],
    ops=[
        ("enqueue", 0, "fast", "ppu"),
        ("enqueue", 1, "fast", "ppu"),
        ("enqueue", 2, "fast", "ppu"),
        ("finish", 0, "retry"),
        ("enqueue", 0, "fast", "ppu"),
    ]
    + [("tick", 0, "")] * 5,
)
def test_every_task_ends_no_idle_slot_money_conserved(
    redis_url: str, modes: list[str], caps: list[int], ops: list[tuple[Any, ...]]
) -> None:
    asyncio.run(scenario(redis_url, modes, caps, ops))


@pytest.fixture(autouse=True, scope="module")
def _print_figures() -> Iterator[None]:
    """With ``-s``: the figures of the property run (tasks, faults, worst time to a final state)."""
    yield
    figures = {**PROPERTY_FIGURES, "reasons": sorted(PROPERTY_FIGURES["reasons"])}
    print("\nliveness property figures:", json.dumps(figures))
