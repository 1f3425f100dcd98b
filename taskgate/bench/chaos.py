"""The chaos suite: real processes on a throwaway Redis (AOF, appendfsync always), faults injected
while clients submit, and a Jepsen-style table per scenario.

Figures (JSON keys, stable): ``acknowledged`` (creates answered 200), ``completed``, ``failed``,
``lost`` (acknowledged but not final at the end), ``double_settlements`` (tasks with more than one
charge/penalty/refund ledger entry), ``upstream_double_submits`` (simulator jobs beyond one per
acknowledged task; one shared account, so a resumed attempt must reuse its job), ``cap_violations``
(10 ms samples where a user's PPU slots exceed its plan cap or an account's exceed its capacity),
``leaked_slots`` (slot leases left at rest), ``money_errors`` (users/units with frozen != 0 at rest
or broken conservation), ``faults``, ``recovery_p99_ms`` (fault -> next completion), ``wall_s``,
``acknowledged_lost`` (a create answered 200 whose task later reads 404 or never ends),
``create_503`` / ``create_5xx`` (503 answers the clients retried / any other 5xx) and, for
``failover_redis`` (master SIGKILLed every N s, Sentinel promotes the replica, the old master comes
back as a replica), ``failovers`` and ``min_replicas_ack`` (the durability option of the run).
``upstream_callbacks`` {sent, lost, failed}: the simulator's callbacks (scenario ``callbacks``).
Every lost / double / violation / leak / money figure must be 0."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from pydantic import SecretStr

from taskgate.bench.chaos_cluster import Cluster
from taskgate.bench.chaos_webhooks import SECRET as HOOK_SECRET
from taskgate.bench.chaos_webhooks import ChaosReceiver
from taskgate.bench.report import percentile
from taskgate.pool.registry import AccountSpec
from taskgate.services import Services, build_services
from taskgate.settings import Settings

PLANS = ("free", "developer", "premium")  # caps (S1) come from the catalogue
ACCOUNT_CAPACITY = 20
FIRST_FAULT_S = 0.5
CALLBACK_PROMPTS = ("", " [sim callback=lost]", " [sim callback=duplicate]")  # by task number, in "callbacks"
ZERO_FIGURES = (
    "acknowledged_lost",
    "webhook_lost",
    "webhook_order_violations",
    "posts_after_410",
    "lost",
    "double_settlements",
    "upstream_double_submits",
    "cap_violations",
    "leaked_slots",
    "money_errors",
)
Fault = Callable[[Cluster, random.Random], Awaitable[None]]


async def kill_worker(c: Cluster, rng: random.Random) -> None:
    proc = rng.choice(c.workers)
    proc.kill()
    proc.start()
    await proc.wait_logged("worker_started")  # the next kill counts from when it is back


async def kill_scheduler(c: Cluster, rng: random.Random) -> None:
    proc = rng.choice(c.schedulers)
    proc.kill()
    proc.start()
    await proc.wait_logged("scheduler_started")


async def kill_api(c: Cluster, rng: random.Random) -> None:
    c.api.kill()
    await asyncio.sleep(0.3)
    c.api.start()
    await c.wait_api()  # the next kill counts from when the API is back, not from its restart


async def kill_redis(c: Cluster, rng: random.Random) -> None:
    c.redis.kill()
    await asyncio.sleep(0.2)
    await c.start_redis()


async def pause_redis(c: Cluster, rng: random.Random) -> None:
    c.redis.signal(signal.SIGSTOP)
    await asyncio.sleep(int(c.env["TASKGATE_LEASE_MS"]) / 1000 + 1.0)
    c.redis.signal(signal.SIGCONT)


async def failover_redis(c: Cluster, rng: random.Random) -> None:
    assert c.sentinel is not None
    killed = await asyncio.to_thread(c.sentinel.kill_master)  # returns once the replica is promoted
    await asyncio.to_thread(c.sentinel.restart, killed)  # back as a replica of the new master


async def kill_worker_or_api(c: Cluster, rng: random.Random) -> None:
    """Callbacks sent while the API is down are lost; a killed worker's attempts resume elsewhere."""
    await (kill_api if rng.random() < 0.5 else kill_worker)(c, rng)


# name -> (schedulers, workers, fault, seconds between faults)
SCENARIOS: dict[str, tuple[int, int, Fault, float]] = {
    # upstream callbacks on; a third of them lost, a third sent twice (CALLBACK_PROMPTS)
    "callbacks": (1, 2, kill_worker_or_api, 2.0),
    "kill_worker": (1, 3, kill_worker, 2.0),
    "kill_scheduler": (3, 2, kill_scheduler, 3.0),
    "kill_api": (1, 2, kill_api, 2.0),
    "kill_redis": (1, 2, kill_redis, 4.0),
    "pause_redis": (1, 2, pause_redis, 5.0),
    "webhook_receiver": (1, 2, kill_worker, 3.0),  # a failing/slow/gone receiver while workers die
    "failover_redis": (1, 2, failover_redis, 6.0),  # through Sentinel; see Cluster(sentinel=True)
}
SENTINEL_SCENARIOS = frozenset({"failover_redis"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", type=int, default=1000, help="tasks per scenario")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma list of " + ", ".join(SCENARIOS)
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--min-replicas-ack",
        type=int,
        default=1,
        help="TASKGATE_REDIS_MIN_REPLICAS_ACK for failover_redis (0 = durability option off)",
    )


def run(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
        return 2
    results = asyncio.run(run_all(names, args.tasks, args.seed, args.min_replicas_ack))
    if args.json:
        print(json.dumps({"benchmark": "chaos", "tasks": args.tasks, "scenarios": results}))
    else:
        _print(results)
    return 0 if all(all(r[f] == 0 for f in ZERO_FIGURES) for r in results.values()) else 1


async def run_all(
    names: list[str], n_tasks: int, seed: int, min_replicas_ack: int = 1
) -> dict[str, dict[str, Any]]:
    from taskgate.logging import configure_logging

    configure_logging("json", "ERROR")
    return {name: await run_scenario(name, n_tasks, seed, min_replicas_ack) for name in names}


async def run_scenario(name: str, n_tasks: int, seed: int, min_replicas_ack: int = 1) -> dict[str, Any]:
    schedulers, workers, fault, every_s = SCENARIOS[name]
    sentinel = name in SENTINEL_SCENARIOS
    cluster = Cluster(
        schedulers=schedulers,
        workers=workers,
        seed=seed,
        sentinel=sentinel,
        min_replicas_ack=min_replicas_ack if sentinel else 0,
        callbacks=name == "callbacks",
    )
    rng = random.Random(seed)
    started = time.perf_counter()
    try:
        await cluster.start()
        services = await build_services(Settings(redis_url=cluster.redis_url, key_prefix="chaos"))
        try:
            figures = await _drive(cluster, services, name, n_tasks, fault, every_s, rng)
            if cluster.sentinel is not None:
                figures |= {"failovers": cluster.sentinel.failovers, "min_replicas_ack": min_replicas_ack}
            return figures | {"wall_s": round(time.perf_counter() - started, 1)}
        finally:
            await services.close()
    finally:
        cluster.stop()


async def _drive(
    cluster: Cluster,
    services: Services,
    name: str,
    n_tasks: int,
    fault: Fault,
    every_s: float,
    rng: random.Random,
) -> dict[str, Any]:
    users: dict[str, tuple[str, str]] = {}
    for plan in PLANS:
        user_id, api_key = await services.users.create(plan, wallets={"mj_quota": 100_000})
        users[user_id] = (plan, api_key)
    account = await services.accounts.add(
        AccountSpec(
            owner="shared",
            provider="sim",
            base_url=cluster.sim_url,
            api_key=SecretStr("chaos-account"),
            capacity=ACCOUNT_CAPACITY,
            models=["midjourney"],
        )
    )
    stop = asyncio.Event()
    violations: Counter[str] = Counter()
    sampler = asyncio.create_task(_sample(services, users, account, violations, stop))
    fault_times: list[float] = []
    faults = asyncio.create_task(_inject(cluster, fault, every_s, rng, fault_times, stop))
    receiver = ChaosReceiver() if name == "webhook_receiver" else None
    if receiver is not None:
        await receiver.start()
    try:
        async with aiohttp.ClientSession() as http:
            codes: Counter[int] = Counter()
            callbacks = name == "callbacks"
            acknowledged = await _submit(http, cluster, users, n_tasks, codes, receiver, callbacks=callbacks)
            final = await _wait_final(services, acknowledged, stop, timeout_s=max(120.0, n_tasks * 0.2))
        hooks = {"webhook_lost": 0, "webhook_order_violations": 0, "posts_after_410": 0}
        if receiver is not None:
            live = [t for t in acknowledged if t not in receiver.gone_tasks]
            await receiver.wait_delivered(live, final, timeout_s=60)
            hooks = receiver.figures(live, final)
    finally:
        if receiver is not None:
            await receiver.stop()
    stop.set()
    await asyncio.gather(sampler, faults)
    await _settled(services, users)
    other_5xx = sum(n for c, n in codes.items() if c >= 500 and c != 503)
    figures = await _figures(cluster, services, users, acknowledged, final, violations, fault_times)
    return figures | hooks | {"create_503": codes[503], "create_5xx": other_5xx}


async def _submit(
    http: aiohttp.ClientSession,
    cluster: Cluster,
    users: dict[str, tuple[str, str]],
    n_tasks: int,
    codes: Counter[int],
    receiver: ChaosReceiver | None = None,
    callbacks: bool = False,
) -> list[str]:
    keys = [api_key for _, api_key in users.values()]
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> str | None:
        body = {
            "model": "midjourney",
            "task_type": "imagine",
            "input": {
                "prompt": f"chaos {i} [sim duration=0.3]" + _callback_prompt(i, callbacks),
                "process_mode": "fast",
            },
        }
        if receiver is not None:
            body["config"] = {"webhook_config": {"endpoint": receiver.url(i), "secret": HOOK_SECRET}}
        headers = {"x-api-key": keys[i % len(keys)], "Idempotency-Key": f"chaos-{i}"}
        async with sem:
            for _ in range(240):  # an unacknowledged create is retried with the same key
                try:
                    async with http.post(
                        cluster.api_url + "/api/v1/task",
                        json=body,
                        headers=headers,
                        timeout=aiohttp.ClientTimeout(total=10),
                    ) as resp:
                        codes[resp.status] += 1
                        if resp.status == 200:
                            task_id = str((await resp.json())["data"]["task_id"])
                            if receiver is not None and receiver.url(i).endswith("/gone"):
                                receiver.gone_tasks.add(task_id)
                            return task_id
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.25)
        return None

    results = await asyncio.gather(*(one(i) for i in range(n_tasks)))
    return [r for r in results if r is not None]


def _callback_prompt(i: int, callbacks: bool) -> str:
    return CALLBACK_PROMPTS[i % len(CALLBACK_PROMPTS)] if callbacks else ""


async def _inject(
    cluster: Cluster,
    fault: Fault,
    every_s: float,
    rng: random.Random,
    times: list[float],
    stop: asyncio.Event,
) -> None:
    wait_s = FIRST_FAULT_S  # the first fault comes early, so even a short run sees one
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), wait_s)
            return
        except TimeoutError:
            wait_s = every_s
        times.append(time.time() * 1000)
        await fault(cluster, rng)


async def _sample(
    services: Services, users: dict[str, Any], account: str, violations: Counter[str], stop: asyncio.Event
) -> None:
    r, k = services.redis, services.keys
    while not stop.is_set():
        try:
            pipe = r.pipeline(transaction=False)
            for user_id in users:
                pipe.zcard(k.user_leases(user_id))
            pipe.zcard(k.account_leases(account))
            counts = await pipe.execute()
            for (plan, _), n in zip(users.values(), counts, strict=False):
                if n > services.catalogue.plan(plan).concurrency:
                    violations[f"user:{plan}"] += 1
            if counts[-1] > ACCOUNT_CAPACITY:
                violations["account"] += 1
        except Exception:  # Redis down or paused: nothing to sample
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.01)


async def _wait_final(
    services: Services, ids: list[str], stop: asyncio.Event, timeout_s: float
) -> dict[str, str]:
    deadline = time.perf_counter() + timeout_s
    statuses: dict[str, str] = {}
    while time.perf_counter() < deadline:
        try:
            pipe = services.redis.pipeline(transaction=False)
            for task_id in ids:
                pipe.hget(services.keys.task(task_id), "status")
            statuses = {
                t: (s.decode() if s else "missing") for t, s in zip(ids, await pipe.execute(), strict=True)
            }
            if all(s in ("completed", "failed") for s in statuses.values()):
                break
        except Exception:
            pass
        await asyncio.sleep(0.2)
    return statuses


async def _settled(services: Services, users: dict[str, Any], timeout_s: float = 1.0) -> None:
    """Wait (at most ``timeout_s``) until no slot lease is left: the last settlements have landed."""
    r, k = services.redis, services.keys
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pipe = r.pipeline(transaction=False)
        pipe.zcard(k.leases())
        for user_id in users:
            pipe.zcard(k.user_leases(user_id))
        if not any(await pipe.execute()):
            return
        await asyncio.sleep(0.05)


async def _figures(
    cluster: Cluster,
    services: Services,
    users: dict[str, Any],
    ids: list[str],
    final: dict[str, str],
    violations: Counter[str],
    fault_times: list[float],
) -> dict[str, Any]:
    r, k = services.redis, services.keys
    settles: Counter[str] = Counter()
    money_errors = 0
    for user_id in users:
        for e in await services.wallets.ledger(user_id, count=1_000_000):
            if e["kind"] in ("charge", "penalty", "refund"):
                settles[e["task"]] += 1
        for b in (await services.wallets.balances(user_id)).values():
            if b["frozen"] != 0 or b["deposited"] + b["converted_in"] != (
                b["available"] + b["frozen"] + b["consumed"] + b["converted_out"]
            ):
                money_errors += 1
    leaked = int(await r.zcard(k.leases()))
    for user_id in users:
        leaked += int(await r.zcard(k.user_leases(user_id)))
    async with aiohttp.ClientSession() as http, http.get(cluster.sim_url + "/sim/stats") as resp:
        sim = await resp.json()
    ended = []
    for task_id in ids:
        value = await r.hget(k.task(task_id), "ended_ms")
        if value:
            ended.append(int(value))
    ended.sort()
    recovery = []
    for t in fault_times:
        later = [e for e in ended if e > t]
        if later:
            recovery.append(later[0] - t)
    return {
        "acknowledged": len(ids),
        "completed": sum(1 for s in final.values() if s == "completed"),
        "failed": sum(1 for s in final.values() if s == "failed"),
        "lost": sum(1 for s in final.values() if s not in ("completed", "failed")),
        # answered 200, then read 404 (the create did not survive) or never ended
        "acknowledged_lost": sum(1 for s in final.values() if s not in ("completed", "failed")),
        "double_settlements": sum(1 for n in settles.values() if n > 1),
        "upstream_double_submits": max(0, int(sim["jobs_submitted"]) - len(ids)),
        "cap_violations": sum(violations.values()),
        "leaked_slots": leaked,
        "money_errors": money_errors,
        "faults": len(fault_times),
        "recovery_p99_ms": round(percentile(recovery, 99) or 0, 1),
        "upstream_callbacks": {k: int(sim.get(f"callbacks_{k}", 0)) for k in ("sent", "lost", "failed")},
    }


def _print(results: dict[str, dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    columns = [
        "acknowledged",
        "completed",
        "failed",
        *ZERO_FIGURES,
        "faults",
        "failovers",
        "create_503",
        "create_5xx",
        "recovery_p99_ms",
        "wall_s",
    ]
    table = Table(title="chaos")
    table.add_column("scenario")
    for c in columns:
        table.add_column(c.replace("_", " "), justify="right")
    for name, r in results.items():
        table.add_row(name, *[str(r.get(c, "")) for c in columns])
    Console(width=170).print(table)
