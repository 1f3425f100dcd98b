"""End-to-end throughput (DESIGN.md §11): tasks/s through freeze -> queue -> dispatch -> run on the
simulator with zero latency -> settle, against a plain arq no-op job on the same Redis in the same
run (the ratio says what taskgate's rules cost on top of arq).

JSON keys (stable): ``benchmark`` "throughput", ``tasks``, ``users``, ``taskgate`` {``wall_s``,
``tasks_per_s``, ``completed``, ``dispatch_ms`` {p50, p99}, ``end_to_end_ms`` {p50, p99}},
``arq_noop`` {``wall_s``, ``jobs_per_s``}, ``ratio`` (taskgate tasks/s / arq no-op jobs/s)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from typing import Any

import aiohttp
from arq.connections import RedisSettings, create_pool
from arq.worker import Worker

from taskgate.bench.procs import drop_keys, on_redis, sim_account
from taskgate.bench.report import percentile
from taskgate.models import CreateTaskRequest
from taskgate.scheduler.runner import run_scheduler
from taskgate.services import Services, build_services
from taskgate.settings import Settings
from taskgate.store.keys import Keys
from taskgate.store.redis_launcher import free_port
from taskgate.worker.arq_worker import job_deserializer, job_serializer
from taskgate.worker.runner import run_worker


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--redis-url", default=None, help="use this Redis instead of a throwaway one")


def run(args: argparse.Namespace) -> int:
    result = asyncio.run(on_redis(args.redis_url, lambda url: measure(url, args.tasks, args.users)))
    if args.json:
        print(json.dumps(result))
    else:
        _print(result)
    return 0


async def measure(redis_url: str, n_tasks: int, n_users: int) -> dict[str, Any]:
    settings = Settings(
        redis_url=redis_url,
        key_prefix=f"bench-{uuid.uuid4().hex[:8]}",
        sim_port=free_port(),
        upstream_poll_interval_s=0.005,
        upstream_polls_per_s_per_account=0,  # one account serves every task here
        worker_max_jobs=500,
        log_level="WARNING",
        sim_latency_turbo_s=0.0,
        sim_latency_fast_s=0.0,
        sim_latency_relax_s=0.0,
    )
    from taskgate.logging import configure_logging

    configure_logging("json", "WARNING")
    taskgate = await _taskgate_run(settings, n_tasks, n_users)
    arq = await _arq_noop_run(redis_url, settings.key_prefix, n_tasks)
    return {
        "benchmark": "throughput",
        "tasks": n_tasks,
        "users": n_users,
        "taskgate": taskgate,
        "arq_noop": arq,
        "ratio": round(taskgate["tasks_per_s"] / arq["jobs_per_s"], 3),
    }


async def _taskgate_run(settings: Settings, n_tasks: int, n_users: int) -> dict[str, Any]:
    services = await build_services(settings)
    sim = await _start_sim(settings)  # its own process, as an upstream would be
    stop = asyncio.Event()
    roles = [
        asyncio.create_task(run_scheduler(settings, stop)),
        asyncio.create_task(run_worker(settings, stop)),
    ]
    try:
        users = [
            await services.users.create("premium", wallets={"mj_quota": 100_000}) for _ in range(n_users)
        ]
        await services.accounts.add(sim_account(settings.sim_port, 10_000))
        records = [await services.users.get(uid) for uid, _ in users]
        request = CreateTaskRequest(
            model="midjourney",
            task_type="imagine",
            input={"prompt": "bench [sim duration=0]", "process_mode": "fast"},
        )
        started = time.perf_counter()
        ids = await _create_all(services, records, request, n_tasks)
        done = await _wait_final(services, ids)
        wall = time.perf_counter() - started
        dispatch, e2e = await _latencies(services, ids)
    finally:
        stop.set()
        await asyncio.gather(*roles, return_exceptions=True)
        sim.terminate()
        await sim.wait()
        await drop_keys(services)
        await services.close()
    return {
        "wall_s": round(wall, 3),
        "tasks_per_s": round(n_tasks / wall, 1),
        "completed": done,
        "dispatch_ms": dispatch,
        "end_to_end_ms": e2e,
    }


async def _start_sim(settings: Settings) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "TASKGATE_SIM_LATENCY_FAST_S": "0",
        "TASKGATE_LOG_LEVEL": "WARNING",
        "TASKGATE_LOG_PROFILE": "json",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "taskgate",
        "upstream-sim",
        "--port",
        str(settings.sim_port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(f"http://127.0.0.1:{settings.sim_port}/sim/stats") as resp:
                    if resp.status == 200:
                        return proc
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    proc.kill()
    raise RuntimeError("the upstream simulator did not start")


async def _create_all(services: Services, users: list[Any], request: CreateTaskRequest, n: int) -> list[str]:
    sem = asyncio.Semaphore(64)

    async def one(i: int) -> str:
        async with sem:
            return str((await services.tasks.create(users[i % len(users)], request))["task_id"])

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def _wait_final(services: Services, ids: list[str], timeout_s: float = 600) -> int:
    deadline = time.perf_counter() + timeout_s
    while True:
        pipe = services.redis.pipeline(transaction=False)
        for task_id in ids:
            pipe.hget(services.keys.task(task_id), "status")
        statuses = [s.decode() for s in await pipe.execute()]
        done = sum(s in ("completed", "failed") for s in statuses)
        if done == len(ids) or time.perf_counter() > deadline:
            return statuses.count("completed")
        await asyncio.sleep(0.05)


async def _latencies(services: Services, ids: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    pipe = services.redis.pipeline(transaction=False)
    for task_id in ids:
        pipe.hmget(services.keys.task(task_id), ["created_ms", "dispatched_ms", "ended_ms"])
    rows = [[int(v or 0) for v in row] for row in await pipe.execute()]
    dispatch = [d - c for c, d, _ in rows if d]
    e2e = [e - c for c, _, e in rows if e]
    return (
        {"p50": percentile(dispatch, 50), "p99": percentile(dispatch, 99)},
        {"p50": percentile(e2e, 50), "p99": percentile(e2e, 99)},
    )


async def _noop(ctx: dict[str, Any]) -> None:
    return None


async def _arq_noop_run(redis_url: str, prefix: str, n: int) -> dict[str, Any]:
    """A plain arq worker tuned like taskgate's (JSON jobs, many concurrent jobs, short poll)."""
    redis_settings = RedisSettings.from_dsn(redis_url)
    queue = Keys(prefix).arq_queue() + "-noop"
    pool = await create_pool(
        redis_settings,
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
        default_queue_name=queue,
    )
    for i in range(n):
        await pool.enqueue_job("_noop", _job_id=f"{queue}-{i}")
    worker = Worker(
        functions=[_noop],
        queue_name=queue,
        redis_settings=redis_settings,
        burst=True,
        max_jobs=500,
        poll_delay=0.005,
        keep_result=0,
        handle_signals=False,
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
    )
    started = time.perf_counter()
    await worker.async_run()
    wall = time.perf_counter() - started
    await worker.close()
    await pool.aclose()
    return {"wall_s": round(wall, 3), "jobs_per_s": round(n / wall, 1)}


def _print(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t, a = result["taskgate"], result["arq_noop"]
    table = Table(title=f"throughput: {result['tasks']} tasks, {result['users']} users")
    for col in ("run", "wall s", "per s", "dispatch p50/p99 ms", "end-to-end p50/p99 ms"):
        table.add_column(col)
    table.add_row(
        "taskgate (freeze->dispatch->sim->settle)",
        str(t["wall_s"]),
        str(t["tasks_per_s"]),
        f"{t['dispatch_ms']['p50']}/{t['dispatch_ms']['p99']}",
        f"{t['end_to_end_ms']['p50']}/{t['end_to_end_ms']['p99']}",
    )
    table.add_row("arq no-op (tuned)", str(a["wall_s"]), str(a["jobs_per_s"]), "", "")
    Console().print(table)
    Console().print(f"ratio taskgate / arq no-op: {result['ratio']}")
