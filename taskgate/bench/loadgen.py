"""An HTTP load generator for ``taskgate bench api`` (run in its own process by ``bench/roles.py``):
``connections`` concurrent loops create tasks for ``seconds``, then read random ones of them."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

import aiohttp

from taskgate.bench.report import percentile


async def drive(args: dict[str, Any], on_create_done: Any = None) -> dict[str, Any]:
    """Args: ``url``, ``api_key``, ``connections``, ``seconds``, ``body`` (the create request);
    ``on_create_done()`` is called between the phases."""
    connections, seconds = int(args["connections"]), float(args["seconds"])
    headers = {"x-api-key": args["api_key"]}
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
        ids: list[str] = []
        create = await _phase(connections, seconds, lambda: _create(http, args["url"], args["body"], ids))
        if not ids:
            raise RuntimeError("no task was created")
        if on_create_done is not None:
            on_create_done()
        read = await _phase(connections, seconds, lambda: _read(http, args["url"], random.choice(ids)))
    return {"create": create, "read": read}


async def _create(http: aiohttp.ClientSession, url: str, body: dict[str, Any], ids: list[str]) -> int:
    async with http.post(f"{url}/api/v1/task", json=body) as resp:
        data = await resp.json()
    if resp.status == 200:
        ids.append(data["data"]["task_id"])
    return resp.status


async def _read(http: aiohttp.ClientSession, url: str, task_id: str) -> int:
    async with http.get(f"{url}/api/v1/task/{task_id}") as resp:
        await resp.read()
    return resp.status


async def _phase(connections: int, seconds: float, call: Any) -> dict[str, Any]:
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds

    async def loop() -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            statuses[await call()] += 1
            latencies.append(round((time.perf_counter() - t0) * 1000, 2))

    await asyncio.gather(*(loop() for _ in range(connections)))
    wall = time.perf_counter() - started
    return {
        "requests": sum(statuses.values()),
        "wall_s": round(wall, 3),
        "statuses": {str(k): v for k, v in statuses.items()},
        "latency_ms": {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99)},
    }
