"""HTTP API create and read rates of one ``taskgate api`` process.

The API runs in its own process; load comes from ``--loadgens`` load generators, each with
``--connections`` concurrent connections: first ``POST /api/v1/task`` for ``--seconds``, then
``GET /api/v1/task/{id}`` of random created tasks for as long. No scheduler runs, so created tasks
stay pending (creation cost is what is measured). Every load generator uses its own user, so a
plan's limits do not bind. ``--loadgen wrk`` drives the load with ``wrk`` (native; one wrk thread
per load generator, ``bench/wrk.py``), ``aiohttp`` with separate Python processes
(``bench/loadgen.py``); ``auto`` (the default) takes wrk when it is on PATH, else aiohttp.

JSON keys: ``benchmark`` "api", ``loadgens``, ``connections``, ``seconds``, ``loadgen`` (the one
used), ``api_log_level``, ``create`` and ``read`` {``per_s`` (200 answers per second),
``requests``, ``statuses`` {code: n}, ``latency_ms`` {p50, p99}} (latency as the first loadgen saw
it, or wrk over all), ``api_cpu_ms_per_request`` (the API process's CPU time over the phase per 200
answer: steadier than rates on a busy machine), ``api_cpu_pct`` (of one core over the phase),
``redis_cpu_ms_per_request`` (null when Redis is not a local process)}."""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from taskgate.bench import wrk
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
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "aiohttp"),
        default="auto",
        help="load generator: wrk (native), aiohttp (Python processes), auto: wrk when on PATH",
    )
    parser.add_argument(
        "--api-log-level", default="WARNING", help="TASKGATE_LOG_LEVEL of the API (INFO: access lines)"
    )


def run(args: argparse.Namespace) -> int:
    loadgen = args.loadgen
    if loadgen == "auto":
        loadgen = "wrk" if wrk.available() else "aiohttp"
        if loadgen == "aiohttp":
            print("wrk is not on PATH: using the aiohttp load generator", file=sys.stderr)
    elif loadgen == "wrk" and not wrk.available():
        print("wrk is not on PATH (Debian: apt-get install wrk); try --loadgen aiohttp", file=sys.stderr)
        return 2
    level = str(args.api_log_level).upper()
    return run_on_redis(
        args,
        lambda url: measure(url, args.seconds, args.connections, args.loadgens, loadgen, level),
        _table,
    )


async def measure(
    redis_url: str,
    seconds: float,
    connections: int,
    loadgens: int,
    loadgen: str = "aiohttp",
    api_log_level: str = "WARNING",
) -> dict[str, Any]:
    port = free_port()
    settings = Settings(
        redis_url=redis_url, key_prefix=f"bench-{uuid.uuid4().hex[:8]}", api_port=port, log_level="WARNING"
    )
    services = await build_services(settings)
    api = await start_api(settings, log_level=api_log_level)
    redis_pid = await _redis_pid(services)
    try:
        users = [
            await services.users.create("enterprise", wallets={"mj_quota": 10**12}) for _ in range(loadgens)
        ]
        run = _drive_wrk if loadgen == "wrk" else _drive_aiohttp
        phases = await run(services, settings, users, connections, seconds, [api.pid, redis_pid])
    finally:
        await stop_process(api)
        await drop_keys(services)
        await services.close()
    (create, create_cpu), (read, read_cpu) = phases
    return {
        "benchmark": "api",
        "loadgens": loadgens,
        "connections": connections,
        "seconds": seconds,
        "loadgen": loadgen,
        "api_log_level": api_log_level,
        "create": _merge(create, *create_cpu),
        "read": _merge(read, *read_cpu),
    }


Cpu = tuple[float, float | None, float]  # API CPU s, Redis CPU s (None: not local), wall s
Phases = list[tuple[list[dict[str, Any]], Cpu]]


class _CpuMeter:
    """CPU seconds of the API and Redis processes between ``lap`` calls."""

    def __init__(self, pids: list[int | None]) -> None:
        self.pids = pids
        self.last = self._read()

    def _read(self) -> tuple[float, float | None, float]:
        api_pid, redis_pid = self.pids
        assert api_pid is not None
        return _cpu_s(api_pid), _cpu_s(redis_pid) if redis_pid else None, time.monotonic()

    def lap(self) -> Cpu:
        now, last = self._read(), self.last
        self.last = now
        redis = now[1] - last[1] if now[1] is not None and last[1] is not None else None
        return now[0] - last[0], redis, now[2] - last[2]


async def _redis_pid(services: Any) -> int | None:
    """Redis's process id when it runs on this machine (its CPU is then reported too)."""
    info = await services.redis.info("server")
    pid = int(info.get("process_id", 0))
    host = services.redis.connection_pool.connection_kwargs.get("host", "")
    local = (
        host in ("127.0.0.1", "localhost", "::1")
        or "path" in services.redis.connection_pool.connection_kwargs
    )
    return pid if local and pid and Path(f"/proc/{pid}/stat").exists() else None


async def _drive_wrk(
    services: Any,
    settings: Settings,
    users: list[tuple[str, str]],
    connections: int,
    seconds: float,
    pids: Any,
) -> Phases:
    url, keys = f"http://127.0.0.1:{settings.api_port}", [key for _, key in users]
    meter = _CpuMeter(pids)
    create = await wrk.run_phase(url, "create", keys, connections, seconds, body=CREATE_BODY)
    create_cpu = meter.lap()
    ids = [
        [t.decode() for t in await services.redis.zrange(services.keys.user_tasks(uid), 0, -1)]
        for uid, _ in users
    ]
    meter.lap()  # reading the ids is not the API's work
    read = await wrk.run_phase(url, "read", keys, connections, seconds, ids=ids)
    return [([create], create_cpu), ([read], meter.lap())]


async def _drive_aiohttp(
    services: Any,
    settings: Settings,
    users: list[tuple[str, str]],
    connections: int,
    seconds: float,
    pids: Any,
) -> Phases:
    procs: list[RoleProcess] = []
    try:
        env = role_env(settings)
        specs = [
            (
                "loadgen",
                {
                    "url": f"http://127.0.0.1:{settings.api_port}",
                    "api_key": key,
                    "connections": connections,
                    "seconds": seconds,
                    "body": CREATE_BODY,
                },
                env,
            )
            for _, key in users
        ]
        procs = await start_all(specs)
        meter = _CpuMeter(pids)
        go_all(procs)
        for p in procs:  # each loadgen says when its create phase is over
            await p.result(timeout_s=2 * seconds + 60)
        create_cpu = meter.lap()
        results = [await p.result(timeout_s=2 * seconds + 60) for p in procs]
        read_cpu = meter.lap()
    finally:
        await kill_all(procs)
    return [([r["create"] for r in results], create_cpu), ([r["read"] for r in results], read_cpu)]


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _merge(
    phases: list[dict[str, Any]], api_cpu_s: float, redis_cpu_s: float | None, wall_s: float
) -> dict[str, Any]:
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
        "api_cpu_pct": round(100 * api_cpu_s / wall_s, 1) if wall_s else None,
        "redis_cpu_ms_per_request": round(1000 * redis_cpu_s / ok, 3)
        if ok and redis_cpu_s is not None
        else None,
    }


def _table(r: dict[str, Any]) -> str:
    def line(name: str) -> str:
        p = r[name]
        return (
            f"  {name}: {p['per_s']} ok/s ({p['requests']} requests, statuses {p['statuses']}, "
            f"p50/p99 {p['latency_ms']['p50']}/{p['latency_ms']['p99']} ms; API CPU "
            f"{p['api_cpu_ms_per_request']} ms/request at {p['api_cpu_pct']} % of a core, Redis CPU "
            f"{p['redis_cpu_ms_per_request']} ms/request)"
        )

    return "\n".join(
        [
            f"api: one API process (log level {r['api_log_level']}), {r['loadgens']} {r['loadgen']} "
            f"load generator(s) x {r['connections']} connections, {r['seconds']} s per phase",
            line("create"),
            line("read"),
        ]
    )
