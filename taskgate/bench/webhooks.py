"""Webhook latency: from a task's completion to its customer's webhook, on loopback.

Simulator, API (with ``--callbacks``), scheduler and workers are separate processes; this process
creates the tasks (at ``--rate`` a second, each ``--duration`` s upstream, with a webhook endpoint),
hosts the customer's webhook receiver, and, with ``--callbacks``, a relay in front of the API's
callback route that stamps when the upstream's completion callback arrives (then forwards it, so
its ~1 ms is counted in). Per task, on one machine's clock: ``callback`` (the relay's stamp),
``end`` (``ended_ms``: finish_task settled it), ``sent`` (the sender's ``sent_ms`` as the POST of
the completed status started) and ``received`` (the receiver's stamp).

JSON keys: ``benchmark`` "webhooks", ``tasks``, ``duration_s``, ``rate_per_s``, ``workers``,
``callbacks``, ``poll_interval_s`` (the sender's fallback poll), ``worker_core_pct`` (the busiest
worker's CPU over the run, % of one core: near 100 the worker, not the webhook path, sets the
tail), ``delivered`` (tasks whose completed webhook arrived), ``lost``, ``duplicates`` (completed
webhooks beyond one per task),
and {p50, p95, p99, max, n} in ms for ``end_to_claimed_ms`` (the sender's claim, Redis clock),
``end_to_sent_ms``, ``end_to_received_ms``,
``callback_to_end_ms``, ``callback_to_sent_ms``, ``callback_to_received_ms`` (the last three
null without callbacks)."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import aiohttp
from aiohttp import web

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
from taskgate.models import CreateTaskRequest
from taskgate.services import Services, build_services
from taskgate.settings import Settings
from taskgate.store.redis_launcher import free_port

HOOK_SECRET = "bench-hook-secret"
CALLBACK_SECRET = "bench-callback-secret"
SAMPLE_S = 1.0  # the workers' CPU samples
SETTLE_S = 30.0  # after the last task's expected end, how long its webhook may still take
STAGES = (
    ("end_to_claimed_ms", "end", "claimed"),
    ("end_to_sent_ms", "end", "sent"),
    ("end_to_received_ms", "end", "received"),
    ("callback_to_end_ms", "callback", "end"),
    ("callback_to_sent_ms", "callback", "sent"),
    ("callback_to_received_ms", "callback", "received"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", type=int, default=300, help="tasks to run")
    parser.add_argument("--rate", type=float, default=50.0, help="tasks created per second")
    parser.add_argument("--duration", type=float, default=1.0, help="seconds each task spends upstream")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--callbacks", action="store_true", help="the simulator calls back (through the API); else polling"
    )
    parser.add_argument("--redis-url", default=None, help="use this Redis instead of a throwaway one")


def run(args: argparse.Namespace) -> int:
    def on(url: str) -> Awaitable[dict[str, Any]]:
        return measure(url, args.tasks, args.rate, args.duration, args.workers, args.callbacks)

    return run_on_redis(args, on, _table)


class Stamps:
    """The bench's own HTTP ends: the customer's webhook receiver and the callback relay."""

    def __init__(self, api_port: int) -> None:
        self.port, self.api_port = free_port(), api_port
        self.received: dict[str, float] = {}  # task -> ms the completed webhook arrived
        self.duplicates = 0
        self.callbacks: dict[str, float] = {}  # task -> ms its first upstream callback arrived
        self.runner: web.AppRunner | None = None
        self.http: aiohttp.ClientSession | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.hook)
        app.router.add_post("/callbacks/{tail:.*}", self.relay)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        self.http = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        if self.runner is not None:
            await self.runner.cleanup()

    async def hook(self, request: web.Request) -> web.Response:
        at = time.time() * 1000
        data = json.loads(await request.read())["data"]
        if data.get("status") == "completed":
            if data["task_id"] in self.received:
                self.duplicates += 1
            self.received.setdefault(data["task_id"], at)
        return web.Response()

    async def relay(self, request: web.Request) -> web.Response:
        """``/callbacks/v1/<kind>/<task>/...``: stamp, then forward to the API as it came."""
        self.callbacks.setdefault(request.path.split("/")[4], time.time() * 1000)
        assert self.http is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        url = f"http://127.0.0.1:{self.api_port}{request.path_qs}"
        async with self.http.post(url, data=body, headers=headers) as resp:
            return web.Response(status=resp.status, body=await resp.read())


async def measure(
    redis_url: str, n: int, rate: float, duration_s: float, workers: int, with_callbacks: bool
) -> dict[str, Any]:
    sim_port, api_port = free_port(), free_port()
    settings = Settings(
        redis_url=redis_url,
        key_prefix=f"bench-{uuid.uuid4().hex[:8]}",
        sim_port=sim_port,
        api_port=api_port,
        webhook_allow_private=True,
        log_level="WARNING",
    )
    stamps = Stamps(api_port)
    await stamps.start()
    extra: dict[str, Any] = {"webhook_allow_private": True}
    if with_callbacks:
        extra |= {"callback_base_url": stamps.base_url, "callback_secret": CALLBACK_SECRET}
    sim = await start_sim_process(sim_port)
    api = await start_api(settings, **extra) if with_callbacks else None
    services = await build_services(settings)
    procs: list[RoleProcess] = []
    try:
        user = await _seed(services, sim_port, n)
        env = role_env(settings, worker_max_jobs=n + 64, sim_latency_fast_s=duration_s, **extra)
        procs = await start_all(
            [("worker", {"sample_s": SAMPLE_S}, env) for _ in range(workers)] + [("scheduler", {}, env)]
        )
        go_all(procs)
        ids = await _create(services, user, _request(duration_s, stamps.base_url), n, rate)
        await _wait_received(stamps, ids, duration_s + SETTLE_S)
        rows = await _rows(services, stamps, ids)
        cpu = [await _core_pct(p) for p in procs[:workers]]
    finally:
        await kill_all(procs)
        await stop_process(sim)
        if api is not None:
            await stop_process(api)
        await stamps.stop()
        await drop_keys(services)
        await services.close()
    result = _figures(rows, n, rate, duration_s, workers, with_callbacks, settings, stamps)
    return result | {"worker_core_pct": max(cpu)}


async def _core_pct(worker: RoleProcess) -> float:
    """A worker's CPU over the run, in % of one core (from its first and last samples)."""
    first = last = await worker.result()
    await asyncio.sleep(SAMPLE_S * 1.5)  # at least one sample after the run
    while not worker.lines.empty():
        line = worker.lines.get_nowait()
        last = json.loads(line) if line else last
    span = max(float(last["t"]) - float(first["t"]), 1e-9)
    return round(100 * (float(last["cpu_s"]) - float(first["cpu_s"])) / span, 1)


def _request(duration_s: float, base_url: str) -> CreateTaskRequest:
    return CreateTaskRequest.model_validate(
        {
            "model": "midjourney",
            "task_type": "imagine",
            "config": {
                "service_mode": "private",
                "webhook_config": {"endpoint": f"{base_url}/hook", "secret": HOOK_SECRET},
            },
            "input": {"prompt": f"webhooks [sim duration={duration_s}]", "process_mode": "fast"},
        }
    )


async def _seed(services: Services, sim_port: int, n: int) -> Any:
    user, _ = await services.users.create("premium", service_mode="private")
    await services.accounts.add(sim_account(sim_port, max(n, 1), owner=user, fast_only=True))
    return await services.users.get(str(user))


async def _create(
    services: Services, user: Any, request: CreateTaskRequest, n: int, rate: float
) -> list[str]:
    """Create ``n`` tasks at ``rate`` a second (paced from the start, not from each other)."""
    loop = asyncio.get_running_loop()
    started, ids = loop.time(), []
    for i in range(n):
        lag = started + i / rate - loop.time()
        if lag > 0:
            await asyncio.sleep(lag)
        task = await services.tasks.create(user, request)
        ids.append(str(task["task_id"]))
    return ids


async def _wait_received(stamps: Stamps, ids: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(t not in stamps.received for t in ids):
        await asyncio.sleep(0.1)


async def _rows(services: Services, stamps: Stamps, ids: list[str]) -> list[dict[str, float]]:
    """Per task: the stamps that exist (ms, one wall clock)."""
    pipe = services.redis.pipeline(transaction=False)
    for task_id in ids:
        pipe.hget(services.keys.task(task_id), "ended_ms")
        pipe.lrange(services.keys.webhook_attempts(task_id), 0, -1)
    answers = await pipe.execute()
    rows = []
    for i, task_id in enumerate(ids):
        ended, attempts = answers[2 * i], answers[2 * i + 1]
        row = {"end": float(ended)} if ended else {}
        done = [a for a in map(json.loads, attempts) if a.get("task_status") == "completed"]
        if done and done[-1].get("sent_ms"):  # the list is newest first: the first attempt is the last
            row["claimed"], row["sent"] = float(done[-1]["at"]), float(done[-1]["sent_ms"])
        for name, source in (("received", stamps.received), ("callback", stamps.callbacks)):
            if task_id in source:
                row[name] = source[task_id]
        rows.append(row)
    return rows


def _spread(values: list[float]) -> dict[str, float | int] | None:
    if not values:
        return None
    spread: dict[str, float | int] = {f"p{q}": round(percentile(values, q) or 0.0, 1) for q in (50, 95, 99)}
    return spread | {"max": round(max(values), 1), "n": len(values)}


def _figures(
    rows: list[dict[str, float]],
    n: int,
    rate: float,
    duration_s: float,
    workers: int,
    with_callbacks: bool,
    settings: Settings,
    stamps: Stamps,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "webhooks",
        "tasks": n,
        "duration_s": duration_s,
        "rate_per_s": rate,
        "workers": workers,
        "callbacks": with_callbacks,
        "poll_interval_s": settings.webhook_poll_interval_s,
        "delivered": sum(1 for r in rows if "received" in r),
        "lost": sum(1 for r in rows if "received" not in r),
        "duplicates": stamps.duplicates,
    }
    for name, start, end in STAGES:
        values = [r[end] - r[start] for r in rows if start in r and end in r]
        result[name] = _spread([v for v in values if math.isfinite(v)])
    return result


def _table(r: dict[str, Any]) -> str:
    def line(name: str) -> str:
        s = r[name]
        if s is None:
            return f"  {name:<24} -"
        figures = "  ".join(f"{q} {s[q]:>7} ms" for q in ("p50", "p95", "p99", "max"))
        return f"  {name:<24} {figures}"

    head = (
        f"webhooks: {r['tasks']} tasks of {r['duration_s']} s at {r['rate_per_s']}/s, "
        f"{r['workers']} worker(s), {'upstream callbacks' if r['callbacks'] else 'polling'}; "
        f"delivered {r['delivered']}, lost {r['lost']}, duplicates {r['duplicates']}; "
        f"busiest worker {r['worker_core_pct']} % of a core"
    )
    return "\n".join([head] + [line(name) for name, _, _ in STAGES])
