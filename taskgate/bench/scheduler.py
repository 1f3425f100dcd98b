"""Scheduler benchmark: decisions/s, enqueue->dispatch latency, fairness and memory per queued task.

For each user count in ``--users`` it seeds, in a fresh key prefix, that many premium users (cap
lifted so that S1 never binds), one shared account with room for every task, and ``--tasks`` fast
PPU tasks priced 1 credit, spread round-robin over the users and written through the real
``create_task`` script (pipelined; seeding is not measured). Then:

1. memory: INFO ``used_memory`` before and after the enqueue, divided by the tasks (includes the
   task hash, its flow entry, ``user_tasks`` entry and its freeze ledger entry; the input is "{}");
2. decisions/s: ``Dispatcher.dispatch(--batch)`` in a loop until the backlog is drained, timed
   client-side, and the Redis-side time of EVALSHA from INFO commandstats (diff before/after);
   commands per decision from the same diff;
3. fairness: Jain's index of per-user dispatch counts over the decisions made while every user
   still had waiting tasks (whole rounds; needs >= 2 tasks per user, else null);
4. latency with free slots: a scheduler loop (``dispatch_all`` + BLPOP on ``sched_wake``) while a
   producer enqueues ``--latency-tasks`` at ``--rate`` per second; enqueue->dispatch measured
   client-side with ``perf_counter`` (before the create_task call -> the dispatch call returning
   the task) and server-side as ``dispatched_ms - created_ms`` (Redis TIME, 1 ms resolution).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Awaitable
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from redis.asyncio import Redis
from rich.console import Console

from taskgate.bench import report
from taskgate.catalogue.spec import Catalogue
from taskgate.dev.server import safe_url
from taskgate.models import Lane, Plan, Pool
from taskgate.scheduler.dispatcher import Dispatch, Dispatcher
from taskgate.scheduler.runner import dispatch_all
from taskgate.settings import Settings
from taskgate.store import script_api
from taskgate.store.keys import SHARED_OWNER, Keys, flow_id
from taskgate.store.redis_launcher import ThrowawayRedis
from taskgate.store.scripts import Scripts
from taskgate.users.service import plan_lua_fields

PIPELINE_CHUNK = 1000
MODEL, MODEL_GROUP, TASK_TYPE, UNIT = "midjourney", "midjourney", "imagine", "credits"
WALLET_CREDITS = 10**12
SAMPLE = 100  # keys sampled for MEMORY USAGE
REPORT_WIDTH = 150  # when stdout is not a terminal
WAKE_TIMEOUT_S = 0.05  # the latency loop's BLPOP; short so that it stops promptly


@dataclass(frozen=True, slots=True)
class BenchConfig:
    users: list[int]
    tasks: int
    batch: int
    latency_tasks: int
    rate: float
    price: int = 1
    quick: bool = False


QUICK = {"users": [10, 100], "tasks": 2000, "latency_tasks": 200, "rate": 500.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", default="10,1000,100000", help="comma-separated user counts")
    parser.add_argument("--tasks", type=int, default=100_000, help="tasks queued per scenario")
    parser.add_argument("--batch", type=int, default=64, help="max dispatches per script call")
    parser.add_argument("--latency-tasks", type=int, default=2000, help="tasks of the latency phase")
    parser.add_argument("--rate", type=float, default=1000.0, help="enqueues/s of the latency phase")
    parser.add_argument("--quick", action="store_true", help=f"small sizes for a smoke test: {QUICK}")
    parser.add_argument(
        "--redis-url", default=None, help="use this Redis (default: a throwaway redis-server)"
    )


def config_from(args: argparse.Namespace) -> BenchConfig:
    if args.quick:
        return BenchConfig(batch=args.batch, quick=True, **QUICK)  # type: ignore[arg-type]
    users = [int(x) for x in str(args.users).split(",") if x.strip()]
    return BenchConfig(users, args.tasks, args.batch, args.latency_tasks, args.rate)


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    console = Console(stderr=True, quiet=bool(args.json))
    result = asyncio.run(bench(config, args.redis_url, console))
    if args.json:
        print(json.dumps(result))
    else:
        table_console = Console()
        report.render(result, table_console if table_console.is_terminal else Console(width=REPORT_WIDTH))
    return 0


async def bench(config: BenchConfig, redis_url: str | None, console: Console) -> dict[str, Any]:
    if redis_url is not None:
        return await _bench_on(config, redis_url, private=False, console=console)
    async with ThrowawayRedis() as server:
        return await _bench_on(config, server.url, private=True, console=console)


async def _bench_on(config: BenchConfig, url: str, *, private: bool, console: Console) -> dict[str, Any]:
    redis = Redis.from_url(url)
    try:
        version = (await redis.info("server"))["redis_version"]
        scenarios = []
        for n_users in config.users:
            console.print(f"[bold]scheduler bench[/]: {n_users} users, {config.tasks} tasks")
            scenarios.append(await Scenario(redis, url, config, n_users, console).run())
    finally:
        await redis.aclose()
    meta = {"version": str(version), "url": safe_url(url), "private": private}
    return report.build(asdict(config), meta, scenarios)


@dataclass
class Scenario:
    redis: Redis
    url: str
    config: BenchConfig
    n_users: int
    console: Console
    keys: Keys = field(init=False)
    scripts: Scripts = field(init=False)
    users: list[str] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)
    owner: dict[str, int] = field(default_factory=dict)  # task id -> user index

    def __post_init__(self) -> None:
        self.keys = Keys(f"bench:{uuid.uuid4().hex[:10]}")
        self.scripts = Scripts(self.redis)

    def settings(self) -> Settings:
        # the scheduler alone: no worker takes the jobs, so no back-pressure bound on them
        return Settings(
            redis_url=self.url,
            key_prefix=self.keys.prefix,
            dispatch_batch=self.config.batch,
            dispatch_max_queued=0,
        )

    async def run(self) -> dict[str, Any]:
        out: dict[str, Any] = {"users": self.n_users, "tasks": self.config.tasks}
        try:
            started = time.perf_counter()
            await self.seed_users()
            await self.seed_account()
            mem_before = await used_memory(self.redis)
            ledger_before = await self.usage(self.per_user_keys(self.sampled_users())["ledger"])
            await self.enqueue_backlog()
            out["memory_per_task_bytes"] = (await used_memory(self.redis) - mem_before) / self.config.tasks
            out["memory_breakdown_bytes"] = await self.memory_breakdown(ledger_before)
            out["seed_s"] = time.perf_counter() - started
            self.console.print(f"  seeded in {out['seed_s']:.1f} s; dispatching the backlog")
            out.update(await self.measure_throughput())
            self.console.print(f"  {out['decisions_per_s']:.0f} decisions/s; measuring latency")
            out.update(await self.measure_latency())
        finally:
            await self.cleanup()
        return out

    # --- seeding (not measured) ---------------------------------------------------------------
    async def seed_users(self) -> None:
        cap = self.config.tasks + self.config.latency_tasks + 1
        self.users = [uuid.uuid4().hex for _ in range(self.n_users)]
        adjust = await self.sha("adjust_wallet")
        plan = plan_lua_fields(Catalogue.load().plan(Plan.PREMIUM))
        for chunk in chunks(self.users, PIPELINE_CHUNK):
            pipe = self.redis.pipeline(transaction=False)
            for user_id in chunk:
                pipe.hset(
                    self.keys.user(user_id),
                    mapping={
                        **plan,
                        "id": user_id,
                        "weight": "1",
                        "failover": "0",
                        "service_mode": "",
                        "cap": str(cap),
                    },
                )
                pipe.sadd(self.keys.users(), user_id)
                pipe.evalsha(
                    adjust,
                    2,
                    self.keys.wallet(user_id),
                    self.keys.ledger(user_id),
                    "",
                    user_id,
                    UNIT,
                    str(WALLET_CREDITS),
                    "top_up",
                    "bench",
                )
            await pipe.execute()

    async def seed_account(self) -> None:
        account_id = uuid.uuid4().hex[:16]
        capacity = self.config.tasks + self.config.latency_tasks + 1
        fields = {
            "owner": SHARED_OWNER,
            "provider": "sim",
            "base_url": "http://127.0.0.1:1",
            "models": MODEL_GROUP,
            "modes": ",".join(Lane),
            "capacity": str(capacity),
            "priority": "0",
            "weight": "1",
            "daily_cap": "0",
            "backup": "0",
        }
        await script_api.put_account(
            self.scripts, self.keys, account_id=account_id, fields=fields, secret="bench-secret"
        )

    async def enqueue_backlog(self) -> None:
        sha = await self.sha("create_task")
        indices = [i % self.n_users for i in range(self.config.tasks)]
        for chunk in chunks(indices, PIPELINE_CHUNK):
            pipe = self.redis.pipeline(transaction=False)
            for user_index in chunk:
                task_id, keys, args = self.create_args(user_index)
                pipe.evalsha(sha, len(keys), *keys, *args)
                self.owner[task_id] = user_index
            for result in await pipe.execute():
                self.task_ids.append(result[1].decode())

    def create_args(self, user_index: int) -> tuple[str, list[str], list[Any]]:
        user_id, task_id = self.users[user_index], str(uuid.uuid4())
        flow = flow_id(Lane.FAST, Pool.PPU, user_id, MODEL_GROUP)
        fields = {
            "user": user_id,
            "model": MODEL,
            "task_type": TASK_TYPE,
            "model_group": MODEL_GROUP,
            "lane": str(Lane.FAST),
            "pool": str(Pool.PPU),
            "bot_id": "",
            "input": "{}",
            "config": "{}",
            "webhook_endpoint": "",
            "webhook_secret": "",
            "ppu_unit": UNIT,
            "ppu_price": str(self.config.price),
            "ppu_relax": "0",
            "bonus": "0",
        }
        k = self.keys
        keys = [
            k.task(task_id),
            k.user(user_id),
            k.wallet(user_id),
            k.ledger(user_id),
            k.user_tasks(user_id),
            k.idempotency(user_id, "-"),
            k.flow(flow),
        ]
        args = [k.base, "", task_id, json.dumps(fields), UNIT, self.config.price, "0", flow, 0, "", ""]
        return task_id, keys, args

    async def sha(self, name: str) -> str:
        return str(await self.redis.script_load(self.scripts.sources[name].text))

    def per_user_keys(self, users: list[str]) -> dict[str, list[str]]:
        flow = [self.keys.flow(flow_id(Lane.FAST, Pool.PPU, u, MODEL_GROUP)) for u in users]
        return {
            "ledger": [self.keys.ledger(u) for u in users],
            "user_tasks": [self.keys.user_tasks(u) for u in users],
            "flow": flow,
        }

    async def memory_breakdown(self, ledger_before: int) -> dict[str, float]:
        """MEMORY USAGE per queued task of what an enqueue writes, on a sample (ledger: the growth)."""
        step = max(1, len(self.task_ids) // SAMPLE)
        tasks = self.task_ids[::step][:SAMPLE]
        out = {"task_hash": await self.usage([self.keys.task(t) for t in tasks]) / max(1, len(tasks))}
        users = self.sampled_users()
        queued = len(users) * self.config.tasks / self.n_users
        for name, keys in self.per_user_keys(users).items():
            out[name] = (await self.usage(keys) - (ledger_before if name == "ledger" else 0)) / queued
        return out

    def sampled_users(self) -> list[str]:
        return self.users[:: max(1, len(self.users) // SAMPLE)][:SAMPLE]

    async def usage(self, keys: list[str]) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key, samples=0)
        return sum(int(x or 0) for x in await pipe.execute())

    # --- measurements --------------------------------------------------------------------------
    async def measure_throughput(self) -> dict[str, Any]:
        dispatcher = Dispatcher(self.redis, self.scripts, self.keys, self.settings())
        stats_before = await self.redis.info("commandstats")
        order: list[str] = []
        calls: list[float] = []
        started = time.perf_counter()
        while len(order) < self.config.tasks:
            t0 = time.perf_counter()
            got = await dispatcher.dispatch(self.config.batch)
            calls.append(time.perf_counter() - t0)
            order.extend(d.task_id for d in got)
            if not got:
                break
        wall = time.perf_counter() - started
        stats_after = await self.redis.info("commandstats")
        out = report.throughput_figures(len(order), wall, calls, stats_before, stats_after)
        out.update(self.fairness(order))
        return out

    def fairness(self, order: list[str]) -> dict[str, Any]:
        per_user = self.config.tasks // self.n_users
        if per_user < 2:
            return {"jain_index": None, "jain_window": 0, "share_max_dev": None}
        window = self.n_users * (per_user - 1)  # whole rounds while every user still has work
        counts = Counter(self.owner[t] for t in order[:window])
        values = [counts.get(i, 0) for i in range(self.n_users)]
        return {"jain_window": window, **report.fairness_figures(values)}

    async def measure_latency(self) -> dict[str, Any]:
        sched_redis, prod_redis = Redis.from_url(self.url), Redis.from_url(self.url)
        watched = WatchedDispatcher(sched_redis, Scripts(sched_redis), self.keys, self.settings())
        stop = asyncio.Event()
        loop = asyncio.create_task(scheduler_loop(watched, sched_redis, self.keys, self.config.batch, stop))
        try:
            sent = await self.produce(Scripts(prod_redis))
            deadline = time.perf_counter() + 10
            while len(watched.seen) < len(sent) and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
        finally:
            stop.set()
            await loop
            await sched_redis.aclose()
        try:
            server_ms = await self.server_latencies(prod_redis, list(sent))
        finally:
            await prod_redis.aclose()
        client_ms = [(watched.seen[t] - s) * 1000 for t, s in sent.items() if t in watched.seen]
        return {
            "latency_ms": report.latency_figures(client_ms, len(sent), "client_perf_counter"),
            "latency_server_ms": report.latency_figures(server_ms, len(sent), "redis_time_ms"),
        }

    async def produce(self, scripts: Scripts) -> dict[str, float]:
        """Enqueue at a steady rate; returns task id -> perf_counter just before its create call."""
        sent: dict[str, float] = {}
        interval, next_at = 1.0 / self.config.rate, time.perf_counter()
        for i in range(self.config.latency_tasks):
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task_id, keys, args = self.create_args(i % self.n_users)
            sent[task_id] = time.perf_counter()
            await scripts.call("create_task", keys=keys, args=args)
            self.task_ids.append(task_id)
            next_at += interval
        return sent

    async def server_latencies(self, redis: Redis, task_ids: list[str]) -> list[float]:
        pipe = redis.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.hmget(self.keys.task(task_id), ["created_ms", "dispatched_ms"])
        rows = await pipe.execute()
        return [float(int(d) - int(c)) for c, d in rows if c and d]

    async def cleanup(self) -> None:
        async for chunk in batched_scan(self.redis, self.keys.pattern()):
            await self.redis.unlink(*chunk)
        for chunk in chunks(self.task_ids, PIPELINE_CHUNK):
            await self.redis.unlink(*(self.keys.arq_job(t, 1) for t in chunk))


class WatchedDispatcher(Dispatcher):
    """A Dispatcher that notes when (perf_counter) each task came back from a dispatch call."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.seen: dict[str, float] = {}

    async def dispatch(self, max_n: int | None = None, *, now_ms: int | None = None) -> list[Dispatch]:
        got = await super().dispatch(max_n, now_ms=now_ms)
        now = time.perf_counter()
        for d in got:
            self.seen[d.task_id] = now
        return got


async def scheduler_loop(
    dispatcher: Dispatcher, redis: Redis, keys: Keys, batch: int, stop: asyncio.Event
) -> None:
    """The scheduler's own loop shape: dispatch until idle, then block on the wake list."""
    while not stop.is_set():
        await dispatch_all(dispatcher, batch)
        wait = redis.blpop([keys.sched_wake()], timeout=WAKE_TIMEOUT_S)  # type: ignore[arg-type]  # float: Redis 6+
        await cast(Awaitable[Any], wait)


async def used_memory(redis: Redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def batched_scan(redis: Redis, pattern: str) -> Any:
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= PIPELINE_CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch
