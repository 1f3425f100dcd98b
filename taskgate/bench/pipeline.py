"""Pipeline throughput with every part in its own process, against plain arq in the same run.

Producer, scheduler, worker(s), simulator (zero latency) and observer are separate processes, as
deployed. The producer fills the queue first (its create rate is reported); then scheduler and
workers start together and the observer, reading counts from Redis (tasks still in the flows or
holding a lease), stamps the moment every task has ended. The baselines drain the same number of
jobs from a pre-filled queue with the same number of worker processes: a no-op arq job, and a
tuned arq job that makes the same two upstream calls (submit, poll) to the same simulator.

JSON keys: ``benchmark`` "pipeline", ``tasks``, ``users``, ``workers`` [1, 2], ``taskgate``
{"<workers>": {``wall_s``, ``tasks_per_s``, ``completed``, ``producer_creates_per_s``,
``worker_cpu_s``, ``dispatch_ms`` {p50, p99}, ``end_to_end_ms`` {p50, p99}}}, ``arq_noop``
{``wall_s``, ``jobs_per_s``}, ``arq_http`` {"<workers>": {``wall_s``, ``jobs_per_s``,
``worker_cpu_s``}}, ``ratio`` {``taskgate_vs_arq_http`` {"<workers>": x}, ``taskgate_vs_arq_noop``
{"<workers>": x}} (taskgate tasks/s over the baseline's jobs/s)."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from taskgate.bench.arq_jobs import enqueue
from taskgate.bench.procs import (
    RoleProcess,
    drop_keys,
    go_all,
    kill_all,
    role_env,
    run_on_redis,
    sim_account,
    start_all,
    start_sim_process,
    stop_process,
)
from taskgate.bench.report import percentile
from taskgate.services import Services, build_services
from taskgate.settings import Settings
from taskgate.store.keys import flow_id
from taskgate.store.redis_launcher import free_port

PROMPT = "bench [sim duration=0]"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--workers", default="1,2", help="worker process counts to run, comma-separated")
    parser.add_argument("--redis-url", default=None, help="use this Redis instead of a throwaway one")


def run(args: argparse.Namespace) -> int:
    workers = [int(w) for w in str(args.workers).split(",") if w.strip()]
    return run_on_redis(args, lambda url: measure(url, args.tasks, args.users, workers), _table)


async def measure(redis_url: str, n_tasks: int, n_users: int, workers: list[int]) -> dict[str, Any]:
    sim_port = free_port()
    sim = await start_sim_process(sim_port)
    try:
        taskgate = {str(w): await _taskgate_run(redis_url, sim_port, n_tasks, n_users, w) for w in workers}
        noop = await _arq_run(redis_url, sim_port, "noop", n_tasks, 1)
        http = {str(w): await _arq_run(redis_url, sim_port, "http", n_tasks, w) for w in workers}
    finally:
        await stop_process(sim)
    return {
        "benchmark": "pipeline",
        "tasks": n_tasks,
        "users": n_users,
        "workers": workers,
        "taskgate": taskgate,
        "arq_noop": noop,
        "arq_http": http,
        "ratio": {
            "taskgate_vs_arq_http": {
                w: _ratio(taskgate[w]["tasks_per_s"], http[w]["jobs_per_s"]) for w in taskgate
            },
            "taskgate_vs_arq_noop": {
                w: _ratio(taskgate[w]["tasks_per_s"], noop["jobs_per_s"]) for w in taskgate
            },
        },
    }


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


def _settings(redis_url: str, sim_port: int) -> Settings:
    return Settings(
        redis_url=redis_url,
        key_prefix=f"bench-{uuid.uuid4().hex[:8]}",
        sim_port=sim_port,
        log_level="WARNING",
    )


async def _taskgate_run(
    redis_url: str, sim_port: int, n_tasks: int, n_users: int, n_workers: int
) -> dict[str, Any]:
    settings = _settings(redis_url, sim_port)
    services = await build_services(settings)
    procs: list[RoleProcess] = []
    try:
        users = await _seed(services, sim_port, n_users)
        env = role_env(
            settings,
            worker_max_jobs=500,
            upstream_poll_interval_s=0.005,
            sim_latency_fast_s=0,
            upstream_polls_per_s_per_account=0,  # one account serves every task here
        )
        request = {
            "model": "midjourney",
            "task_type": "imagine",
            "input": {"prompt": PROMPT, "process_mode": "fast"},
        }
        procs += await start_all([("producer", {"users": users, "request": request, "total": n_tasks}, env)])
        producer = procs[0]
        producer.go()
        made = await producer.result()
        flows = [services.keys.flow(flow_id("fast", "ppu", u, "midjourney")) for u in users]
        specs = [
            ("scheduler", {}, env),
            ("observer", {"flows": flows, "leases": services.keys.leases(), "total": n_tasks}, env),
        ]
        specs += [("worker", {"sample_s": 0.25}, env)] * n_workers
        procs += await start_all(specs)
        started = go_all(procs[1:])
        done_at = float((await procs[2].result())["done_at"])
        cpu = sum([await _cpu_after(p, done_at) for p in procs[3:]])
        wall = done_at - started
        completed, dispatch, e2e = await _outcomes(services, users)
    finally:
        await kill_all(procs)
        await drop_keys(services)
        await services.close()
    return {
        "wall_s": round(wall, 3),
        "tasks_per_s": round(n_tasks / wall, 1),
        "completed": completed,
        "producer_creates_per_s": round(n_tasks / (made["ended_at"] - made["started_at"]), 1),
        "worker_cpu_s": round(cpu, 3),
        "dispatch_ms": dispatch,
        "end_to_end_ms": e2e,
    }


async def _cpu_after(worker: RoleProcess, moment: float) -> float:
    """CPU seconds the worker had used at its first sample at or after ``moment``, minus at go."""
    first = await worker.result()
    sample = first
    while float(sample["t"]) < moment:
        sample = await worker.result()
    return float(sample["cpu_s"]) - float(first["cpu_s"])


async def _seed(services: Services, sim_port: int, n_users: int) -> list[str]:
    users = [
        (await services.users.create("premium", wallets={"mj_quota": 10_000_000}))[0] for _ in range(n_users)
    ]
    await services.accounts.add(sim_account(sim_port, 10_000))
    return users


async def _outcomes(services: Services, users: list[str]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    ids: list[str] = []
    for user in users:
        ids += [i.decode() for i in await services.redis.zrange(services.keys.user_tasks(user), 0, -1)]
    pipe = services.redis.pipeline(transaction=False)
    for task_id in ids:
        pipe.hmget(services.keys.task(task_id), ["status", "created_ms", "dispatched_ms", "ended_ms"])
    rows = await pipe.execute()
    completed = sum(1 for row in rows if row[0] == b"completed")
    times = [[int(v or 0) for v in row[1:]] for row in rows]
    dispatch = [d - c for c, d, _ in times if d]
    e2e = [e - c for c, _, e in times if e]
    return (
        completed,
        {"p50": percentile(dispatch, 50), "p99": percentile(dispatch, 99)},
        {"p50": percentile(e2e, 50), "p99": percentile(e2e, 99)},
    )


async def _arq_run(redis_url: str, sim_port: int, kind: str, n: int, n_workers: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    queue = f"bench-{run}:arq:{kind}"
    await enqueue(redis_url, queue, kind, n)
    args = {
        "redis_url": redis_url,
        "queue": queue,
        "kind": kind,
        "run": run,
        "sim_url": f"http://127.0.0.1:{sim_port}",
    }
    procs = await start_all([("arq", args, role_env(_settings(redis_url, sim_port)))] * n_workers)
    try:
        started = go_all(procs)
        ends = [await p.result() for p in procs]
    finally:
        await kill_all(procs)
    wall = max(float(e["ended_at"]) for e in ends) - started
    out = {
        "wall_s": round(wall, 3),
        "jobs_per_s": round(n / wall, 1),
        "worker_cpu_s": round(sum(float(e["cpu_s"]) for e in ends), 3),
    }
    if kind == "noop":
        out.pop("worker_cpu_s")
    return out


def _table(result: dict[str, Any]) -> str:
    lines = [f"pipeline: {result['tasks']} tasks, {result['users']} users, separate processes"]
    for w, t in result["taskgate"].items():
        lines.append(
            f"  taskgate, {w} worker(s): {t['tasks_per_s']} tasks/s (wall {t['wall_s']} s, "
            f"completed {t['completed']}, worker CPU {t['worker_cpu_s']} s, "
            f"e2e p50/p99 {t['end_to_end_ms']['p50']}/{t['end_to_end_ms']['p99']} ms; "
            f"producer {t['producer_creates_per_s']} creates/s)"
        )
    lines.append(f"  arq no-op, 1 worker: {result['arq_noop']['jobs_per_s']} jobs/s")
    for w, a in result["arq_http"].items():
        lines.append(f"  arq submit+poll job, {w} worker(s): {a['jobs_per_s']} jobs/s")
    for name, by_w in result["ratio"].items():
        lines.append(f"  ratio {name}: " + ", ".join(f"{w} worker(s) {r}" for w, r in by_w.items()))
    return "\n".join(lines)
