"""HTTP API create and read rates of one ``taskgate api`` process.

The API runs in its own process; load comes from ``--loadgens`` separate aiohttp load-generator
processes, each with ``--connections`` concurrent connections: first ``POST /api/v1/task`` for
``--seconds``, then ``GET /api/v1/task/{id}`` of random created tasks for as long. No scheduler
runs, so created tasks stay pending (creation cost is what is measured). Every loadgen uses its own
user, so a plan's limits do not bind.

JSON keys: ``benchmark`` "api", ``loadgens``, ``connections``, ``seconds``, ``create`` and ``read``
{``per_s`` (200 answers per second), ``requests``, ``statuses`` {code: n}, ``latency_ms`` {p50, p99}}
(latency as the first loadgen saw it), ``api_cpu_ms_per_request`` (the API process's CPU time over
the phase per 200 answer: steadier than rates on a busy machine)."""

from __future__ import annotations

import argparse
import os
import uuid
from pathlib import Path
from typing import Any

from taskgate.bench.procs import (
    RoleProcess,
    drop_keys,
    go_all,
    kill_all,
    role_env,
    run_on_redis,
    start_all,
    start_api,
    stop_process,
)
from taskgate.services import build_services
from taskgate.settings import Settings
from taskgate.store.redis_launcher import free_port

CREATE_BODY = {
    "model": "midjourney",
    "task_type": "imagine",
    "input": {"prompt": "a lighthouse at dusk", "process_mode": "fast"},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase (create, read)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections per loadgen")
    parser.add_argument("--loadgens", type=int, default=1, help="load-generator processes")
    parser.add_argument("--redis-url", default=None, help="use this Redis instead of a throwaway one")


def run(args: argparse.Namespace) -> int:
    return run_on_redis(args, lambda url: measure(url, args.seconds, args.connections, args.loadgens), _table)


async def measure(redis_url: str, seconds: float, connections: int, loadgens: int) -> dict[str, Any]:
    port = free_port()
    settings = Settings(
        redis_url=redis_url, key_prefix=f"bench-{uuid.uuid4().hex[:8]}", api_port=port, log_level="WARNING"
    )
    services = await build_services(settings)
    api = await start_api(settings)
    procs: list[RoleProcess] = []
    try:
        keys = [
            (await services.users.create("enterprise", wallets={"mj_quota": 10**12}))[1]
            for _ in range(loadgens)
        ]
        env = role_env(settings)
        specs = [
            (
                "loadgen",
                {
                    "url": f"http://127.0.0.1:{port}",
                    "api_key": key,
                    "connections": connections,
                    "seconds": seconds,
                    "body": CREATE_BODY,
                },
                env,
            )
            for key in keys
        ]
        procs = await start_all(specs)
        cpu = [_cpu_s(api.pid)]
        go_all(procs)
        for p in procs:  # each loadgen says when its create phase is over
            await p.result(timeout_s=2 * seconds + 60)
        cpu.append(_cpu_s(api.pid))
        results = [await p.result(timeout_s=2 * seconds + 60) for p in procs]
        cpu.append(_cpu_s(api.pid))
    finally:
        await kill_all(procs)
        await stop_process(api)
        await drop_keys(services)
        await services.close()
    return {
        "benchmark": "api",
        "loadgens": loadgens,
        "connections": connections,
        "seconds": seconds,
        "create": _merge([r["create"] for r in results], cpu[1] - cpu[0]),
        "read": _merge([r["read"] for r in results], cpu[2] - cpu[1]),
    }


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _merge(phases: list[dict[str, Any]], api_cpu_s: float) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for phase in phases:
        for code, n in phase["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
    ok = statuses.get("200", 0)
    wall = max(p["wall_s"] for p in phases)
    return {
        "per_s": round(ok / wall, 1) if wall else 0.0,
        "requests": sum(p["requests"] for p in phases),
        "statuses": statuses,
        "latency_ms": phases[0]["latency_ms"],
        "api_cpu_ms_per_request": round(1000 * api_cpu_s / ok, 3) if ok else None,
    }


def _table(r: dict[str, Any]) -> str:
    def line(name: str) -> str:
        p = r[name]
        return (
            f"  {name}: {p['per_s']} ok/s ({p['requests']} requests, statuses {p['statuses']}, "
            f"p50/p99 {p['latency_ms']['p50']}/{p['latency_ms']['p99']} ms)"
        )

    return "\n".join(
        [
            f"api: one API process, {r['loadgens']} loadgen process(es) x {r['connections']} "
            f"connections, {r['seconds']} s per phase",
            line("create"),
            line("read"),
        ]
    )
