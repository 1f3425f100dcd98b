"""In-flight cost: one worker process holding N tasks that each spend a given time upstream.

Simulator, scheduler, producer and one worker are separate processes. The tasks run on the user's
own (BYOA) accounts, so neither a plan cap nor credits bound them. Once every task is submitted
upstream and before the first can end, the worker's own samples (CPU time, upstream polls, lease
renewals) are read over a window.

JSON keys: ``benchmark`` "inflight", ``tasks``, ``duration_s``, ``window_s`` (measured), ``held``
(tasks the worker ran at once), ``all_in_flight`` (whether the window saw every task in flight),
``callbacks`` (whether the simulator called back; else polling only), ``poll_cap``,
``worker_core_pct`` (CPU of the worker process over the window, % of one core),
``cpu_us_per_task_s`` (worker CPU microseconds per second per in-flight task), ``polls_per_s``,
``lease_renewals_per_s`` (task leases renewed), ``lease_renew_calls_per_s`` (script calls),
``callback_latency_ms`` {p50, p99} or null without callbacks: once every task is in flight (and
before the window), ``PROBES`` more tasks of 1 s are run, each measured from its upstream end
(dispatched + 1 s, an upper bound) to its task's end, ``ramp_s`` (go to all submitted),
``max_jobs`` (the worker's arq jobs at once: submits in progress), ``max_inflight`` (the watcher's
capacity), ``jobs_max`` (most arq jobs seen running at once), ``wakes_per_s`` (callbacks routed to
held attempts over the window), ``lease_ms``, ``ramp_worker_core_pct`` (the worker's CPU while
tasks are submitted: near 100 means the worker, not the scheduler or producer, bounds the ramp)."""

from __future__ import annotations

import argparse
import asyncio
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from taskgate.bench.procs import (
    RoleProcess,
    drop_keys,
    go_all,
    kill_all,
    role_env,
    run_on_redis,
    sim_account,
    start_all,
    start_api,
    start_sim_process,
    stop_process,
)
from taskgate.bench.report import percentile
from taskgate.services import build_services
from taskgate.settings import Settings
from taskgate.store.redis_launcher import free_port

ACCOUNT_CAPACITY_MAX = 10_000
PROBES = 50  # 1 s tasks that measure callback latency while the others are in flight
CALLBACK_SECRET = "bench-callback-secret"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", type=int, default=1000, help="tasks to hold in flight (up to 20,000)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds each task spends upstream")
    parser.add_argument(
        "--window", type=float, default=0.0, help="most seconds measured (0: while every task is in flight)"
    )
    parser.add_argument(
        "--poll-cap",
        type=float,
        default=0.0,
        help="upstream polls/s per account per worker (0: no cap, the default here)",
    )
    parser.add_argument("--callbacks", action="store_true", help="the simulator calls back (an API receives)")
    parser.add_argument(
        "--max-jobs",
        type=int,
        default=200,
        help="the worker's arq jobs at once (submits); not a bound on held tasks",
    )
    parser.add_argument(
        "--lease-ms",
        type=int,
        default=30_000,
        help="slot lease (TASKGATE_LEASE_MS) of every role: a worker slower to submit than dispatch "
        "lets leases of jobs not yet started expire; a longer lease keeps a ramp of 20,000 intact",
    )
    parser.add_argument("--redis-url", default=None, help="use this Redis instead of a throwaway one")


def run(args: argparse.Namespace) -> int:
    def on(url: str) -> Awaitable[dict[str, Any]]:
        return measure(
            url,
            args.tasks,
            args.duration,
            args.window,
            args.poll_cap,
            args.callbacks,
            args.max_jobs,
            args.lease_ms,
        )

    return run_on_redis(args, on, _table)


def _request(duration_s: float) -> dict[str, Any]:
    return {
        "model": "midjourney",
        "task_type": "imagine",
        "config": {"service_mode": "private"},
        "input": {"prompt": f"inflight [sim duration={duration_s}]", "process_mode": "fast"},
    }


async def measure(
    redis_url: str,
    n: int,
    duration_s: float,
    window_s: float,
    poll_cap: float = 0,
    with_callbacks: bool = False,
    max_jobs: int = 200,
    lease_ms: int = 30_000,
) -> dict[str, Any]:
    sim_port, api_port = free_port(), free_port()
    settings = Settings(
        redis_url=redis_url,
        key_prefix=f"bench-{uuid.uuid4().hex[:8]}",
        sim_port=sim_port,
        api_port=api_port,
        log_level="WARNING",
    )
    extra: dict[str, Any] = {}
    if with_callbacks:
        extra = {"callback_base_url": f"http://127.0.0.1:{api_port}", "callback_secret": CALLBACK_SECRET}
    sim = await start_sim_process(sim_port)
    api = await start_api(settings, **extra) if with_callbacks else None
    services = await build_services(settings)
    procs: list[RoleProcess] = []
    try:
        user = await _seed(services, sim_port, n + PROBES)
        # the worker expects the simulator's real duration (adaptive polling plans around it)
        env = role_env(
            settings,
            worker_max_jobs=max_jobs,
            worker_max_inflight=n + PROBES + 64,
            lease_ms=lease_ms,
            sim_latency_fast_s=duration_s,
            upstream_polls_per_s_per_account=poll_cap,
            **extra,
        )
        procs = await start_all(
            [
                ("worker", {"sample_s": 0.5}, env),
                ("scheduler", {}, env),
                ("producer", {"users": [user], "request": _request(duration_s), "total": n}, env),
            ]
        )
        started = go_all(procs)
        probes: dict[str, Any] = {}

        async def run_probes() -> None:  # while every task is in flight
            probes["latency"] = await _probe_latency(services, user, env)

        result = await _observe(
            procs[0], started, n, duration_s, window_s, run_probes if with_callbacks else None
        )
        return result | {
            "callbacks": with_callbacks,
            "poll_cap": poll_cap,
            "callback_latency_ms": probes.get("latency"),
            "max_jobs": max_jobs,
            "max_inflight": n + PROBES + 64,
            "lease_ms": lease_ms,
        }
    finally:
        await kill_all(procs)
        await stop_process(sim)
        if api is not None:
            await stop_process(api)
        await drop_keys(services)
        await services.close()


async def _probe_latency(services: Any, user: str, env: dict[str, str]) -> dict[str, Any]:
    """Run PROBES 1 s tasks beside the ones in flight; each one's end minus its upstream end."""
    before = set(await services.redis.zrange(services.keys.user_tasks(user), 0, -1))
    producers = await start_all(
        [("producer", {"users": [user], "request": _request(1.0), "total": PROBES}, env)]
    )
    try:
        go_all(producers)
        await producers[0].result()
    finally:
        await kill_all(producers)
    ids = [
        i.decode()
        for i in await services.redis.zrange(services.keys.user_tasks(user), 0, -1)
        if i not in before
    ]
    rows: list[Any] = []
    for _ in range(1200):
        pipe = services.redis.pipeline(transaction=False)
        for task_id in ids:
            pipe.hmget(services.keys.task(task_id), ["status", "dispatched_ms", "ended_ms"])
        rows = await pipe.execute()
        if all(r[0] in (b"completed", b"failed") for r in rows):
            break
        await asyncio.sleep(0.05)
    late = [int(r[2]) - int(r[1]) - 1000 for r in rows if r[2] and r[1]]
    return {"p50": percentile(late, 50), "p99": percentile(late, 99), "probes": len(late)}


async def _seed(services: Any, sim_port: int, n: int) -> str:
    user, _ = await services.users.create("premium", service_mode="private")
    for _ in range(math.ceil(n / ACCOUNT_CAPACITY_MAX)):
        await services.accounts.add(
            sim_account(sim_port, min(n, ACCOUNT_CAPACITY_MAX), owner=user, fast_only=True)
        )
    return str(user)


async def _observe(
    worker: RoleProcess,
    started: float,
    n: int,
    duration_s: float,
    window_s: float,
    before_window: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Wait for every task to be submitted (then run ``before_window``), then read the worker's
    samples over the window."""
    first_submit_at: float | None = None
    sample = first = await worker.result()
    while int(sample["submits"]) < n:
        if first_submit_at is None and int(sample["submits"]) > 0:
            first_submit_at = float(sample["t"])
        if float(sample["t"]) > (first_submit_at or started) + duration_s - 1:
            break  # the first tasks end before the last are submitted: reported as not all in flight
        sample = await worker.result()
    ramp = sample
    if before_window is not None:
        await before_window()
        resumed_at = time.time()
        while float(sample["t"]) < resumed_at:
            sample = await worker.result()
    begin = sample
    first_end = (first_submit_at or float(begin["t"])) + duration_s
    end_by = first_end - 1.0 if window_s <= 0 else min(float(begin["t"]) + window_s, first_end - 1.0)
    end, held, jobs = begin, int(begin["running"]), int(begin.get("jobs", 0))
    while float(end["t"]) < end_by:
        end = await worker.result()
        held, jobs = max(held, int(end["running"])), max(jobs, int(end.get("jobs", 0)))
    ramp_span = max(float(ramp["t"]) - float(first["t"]), 1e-9)
    ramp_cpu = 100 * (float(ramp["cpu_s"]) - float(first["cpu_s"])) / ramp_span
    return _figures(n, duration_s, started, begin, end, held) | {
        "jobs_max": jobs,
        "ramp_worker_core_pct": round(ramp_cpu, 1),
    }


def _figures(
    n: int, duration_s: float, started: float, begin: dict[str, Any], end: dict[str, Any], held: int
) -> dict[str, Any]:
    span = max(float(end["t"]) - float(begin["t"]), 1e-9)
    cpu = float(end["cpu_s"]) - float(begin["cpu_s"])

    def rate(name: str) -> float:
        return round((int(end[name]) - int(begin[name])) / span, 1)

    return {
        "benchmark": "inflight",
        "tasks": n,
        "duration_s": duration_s,
        "window_s": round(span, 2),
        "held": held,
        "all_in_flight": int(end["running"]) >= n and span > 0.01,
        "worker_core_pct": round(100 * cpu / span, 1),
        "cpu_us_per_task_s": round(1e6 * cpu / span / max(held, 1), 1),
        "polls_per_s": rate("polls"),
        "lease_renewals_per_s": rate("renewed"),
        "lease_renew_calls_per_s": rate("renew_calls"),
        "wakes_per_s": rate("wakes"),
        "callback_latency_ms": None,
        "ramp_s": round(float(begin["t"]) - started, 2),
    }


def _table(r: dict[str, Any]) -> str:
    return (
        f"inflight: {r['held']} of {r['tasks']} tasks of {r['duration_s']} s held by one worker "
        f"(all in flight: {r['all_in_flight']}, ramp {r['ramp_s']} s; arq max_jobs {r['max_jobs']}, "
        f"at most {r['jobs_max']} jobs seen running)\n"
        f"  worker CPU {r['worker_core_pct']} % of a core over {r['window_s']} s = "
        f"{r['cpu_us_per_task_s']} us CPU per task per second\n"
        f"  upstream polls {r['polls_per_s']}/s, lease renewals {r['lease_renewals_per_s']}/s "
        f"in {r['lease_renew_calls_per_s']} script calls/s, callback latency {r['callback_latency_ms']}"
    )
