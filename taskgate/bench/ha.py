"""Cost of the durability option: HTTP create throughput through Sentinel with
TASKGATE_REDIS_MIN_REPLICAS_ACK off (0) and on (1), measured in one run on the same Sentinel set.

Phases alternate (off, on, off, on, ...) so a machine's drift hits both alike; each phase creates
``--tasks`` tasks with ``--concurrency`` clients against the real API (no scheduler: the tasks stay
queued). Figures per setting: creates/s (median of its phases) and latency p50/p99 (all phases)."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import aiohttp
from aiohttp import web

from taskgate.api.app import create_app
from taskgate.bench.report import percentile
from taskgate.bench.sentinel_set import SentinelSet
from taskgate.services import build_services
from taskgate.settings import Settings
from taskgate.store.redis_launcher import free_port

BODY = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "bench", "process_mode": "fast"}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", type=int, default=1000, help="creates per phase")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="phases per setting")


def run(args: argparse.Namespace) -> int:
    from taskgate.logging import configure_logging

    configure_logging("json", "ERROR")
    result = asyncio.run(measure(args.tasks, args.concurrency, args.rounds))
    if args.json:
        print(json.dumps({"benchmark": "ha", **result}))
    else:
        for name, figures in result["settings"].items():
            print(f"min_replicas_ack={name}: {figures}")
        print(f"cost of the option: {result['cost_pct']} % of create throughput")
    return 0


async def measure(n_tasks: int, concurrency: int, rounds: int) -> dict[str, Any]:
    cluster = SentinelSet()
    await asyncio.to_thread(cluster.start)
    try:
        rates: dict[int, list[float]] = {0: [], 1: []}
        latencies: dict[int, list[float]] = {0: [], 1: []}
        for i in range(rounds):
            for acks in (0, 1):
                rate, lat = await _phase(cluster.url, f"ha{i}x{acks}", acks, n_tasks, concurrency)
                rates[acks].append(rate)
                latencies[acks].extend(lat)
    finally:
        await asyncio.to_thread(cluster.stop)
    settings = {
        str(acks): {
            "creates_per_s": round(statistics.median(rates[acks]), 1),
            "p50_ms": round(percentile(latencies[acks], 50) or 0, 2),
            "p99_ms": round(percentile(latencies[acks], 99) or 0, 2),
        }
        for acks in (0, 1)
    }
    off, on = settings["0"]["creates_per_s"], settings["1"]["creates_per_s"]
    return {
        "tasks_per_phase": n_tasks,
        "concurrency": concurrency,
        "rounds": rounds,
        "settings": settings,
        "cost_pct": round(100 * (off - on) / off, 1) if off else None,
    }


async def _phase(url: str, prefix: str, acks: int, n: int, concurrency: int) -> tuple[float, list[float]]:
    settings = Settings(
        redis_url=url,
        key_prefix=prefix,
        redis_min_replicas_ack=acks,
        api_port=free_port(),
        log_profile="json",
    )
    services = await build_services(settings)
    runner = web.AppRunner(create_app(settings, services), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.api_port).start()
    try:
        _, api_key = await services.users.create("enterprise", wallets={"mj_quota": 10**9})
        latencies: list[float] = []
        queue = iter(range(n))
        endpoint = f"http://127.0.0.1:{settings.api_port}/api/v1/task"
        async with aiohttp.ClientSession() as http:

            async def client() -> None:
                for _ in queue:
                    t0 = time.perf_counter()
                    async with http.post(endpoint, json=BODY, headers={"x-api-key": api_key}) as resp:
                        await resp.read()
                        if resp.status != 200:
                            raise RuntimeError(f"create answered {resp.status}")
                    latencies.append((time.perf_counter() - t0) * 1000)

            started = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        return n / elapsed, latencies
    finally:
        await runner.cleanup()
        await services.close()
