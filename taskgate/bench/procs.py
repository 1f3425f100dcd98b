"""Starting and steering the separate processes of a benchmark run (``bench/roles.py``), the
simulator and API processes, and the run itself: on ``--redis-url`` or a throwaway Redis."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from pydantic import SecretStr

from taskgate.models import Lane
from taskgate.pool.registry import AccountSpec
from taskgate.settings import Settings
from taskgate.store.redis_launcher import ThrowawayRedis

if TYPE_CHECKING:
    from taskgate.services import Services

READY_TIMEOUT_S = 60.0
Measure = Callable[[str], Awaitable[dict[str, Any]]]


def run_on_redis(args: Any, measure: Measure, table: Callable[[dict[str, Any]], str]) -> int:
    """A benchmark's ``run``: ``measure(redis_url)`` on ``--redis-url`` or a throwaway Redis, then
    one JSON object (``--json``) or the table on stdout."""
    from taskgate.logging import configure_logging

    configure_logging("json", "WARNING")
    result = asyncio.run(on_redis(args.redis_url, measure))
    print(json.dumps(result) if args.json else table(result))
    return 0


async def on_redis(redis_url: str | None, measure: Measure) -> dict[str, Any]:
    """``measure`` on ``redis_url``, or on a throwaway redis-server when it is None."""
    if redis_url:
        return await measure(redis_url)
    async with ThrowawayRedis() as server:
        return await measure(server.url)


async def drop_keys(services: Services) -> None:
    """Delete every key of the run's prefix (a benchmark leaves no keys behind)."""
    async for key in services.redis.scan_iter(match=services.keys.pattern(), count=1000):
        await services.redis.delete(key)


def sim_account(
    sim_port: int, capacity: int, *, owner: str = "shared", fast_only: bool = False
) -> AccountSpec:
    """The one simulated Midjourney account a benchmark drives its tasks through."""
    spec = AccountSpec(
        owner=owner,
        provider="sim",
        base_url=f"http://127.0.0.1:{sim_port}",
        api_key=SecretStr("bench"),
        capacity=capacity,
        models=["midjourney"],
    )
    return spec.model_copy(update={"modes": [Lane.FAST]}) if fast_only else spec


def role_env(settings: Settings, **extra: Any) -> dict[str, str]:
    """The environment that makes a child process build the same Settings (plus ``extra``)."""
    env = {
        **os.environ,
        "TASKGATE_REDIS_URL": settings.redis_url,
        "TASKGATE_KEY_PREFIX": settings.key_prefix,
        "TASKGATE_LOG_LEVEL": "WARNING",
        "TASKGATE_LOG_PROFILE": "json",
    }
    env.update({f"TASKGATE_{k.upper()}": str(v) for k, v in extra.items()})
    return env


class RoleProcess:
    """One ``python -m taskgate.bench.roles <role>`` child: ready -> go -> JSON lines -> killed."""

    def __init__(self, proc: asyncio.subprocess.Process, role: str) -> None:
        self.proc, self.role = proc, role
        self.lines: asyncio.Queue[str] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, role: str, args: dict[str, Any], env: dict[str, str]) -> RoleProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "taskgate.bench.roles",
            role,
            json.dumps(args),
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=1 << 24,
        )
        return cls(proc, role)

    async def ready(self) -> None:
        line = await asyncio.wait_for(self._line(), READY_TIMEOUT_S)
        if line != "ready":
            raise RuntimeError(f"bench role {self.role} did not start (said {line!r})")
        self._reader = asyncio.create_task(self._read_all())  # keeps the pipe from filling up

    async def _read_all(self) -> None:
        while True:
            line = await self._line()
            await self.lines.put(line)
            if not line:
                return

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")

    async def result(self, timeout_s: float = 600.0) -> dict[str, Any]:
        """The next JSON line the role prints."""
        line = await asyncio.wait_for(self.lines.get(), timeout_s)
        if not line:
            self.lines.put_nowait(line)
            raise RuntimeError(f"bench role {self.role} ended without a result")
        value: dict[str, Any] = json.loads(line)
        return value

    async def _line(self) -> str:
        assert self.proc.stdout is not None
        return (await self.proc.stdout.readline()).decode().strip()

    async def kill(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


async def start_all(specs: list[tuple[str, dict[str, Any], dict[str, str]]]) -> list[RoleProcess]:
    """Start every role and wait until all are ready (their start-up is not measured)."""
    procs = [await RoleProcess.start(role, args, env) for role, args, env in specs]
    try:
        await asyncio.gather(*(p.ready() for p in procs))
    except BaseException:
        await kill_all(procs)
        raise
    return procs


def go_all(procs: list[RoleProcess]) -> float:
    started = time.time()
    for p in procs:
        p.go()
    return started


async def kill_all(procs: list[RoleProcess]) -> None:
    await asyncio.gather(*(p.kill() for p in procs), return_exceptions=True)


async def start_sim_process(port: int, **extra: Any) -> asyncio.subprocess.Process:
    """``taskgate upstream-sim`` in its own process (latencies 0 unless ``extra`` says otherwise)."""
    env = {
        **os.environ,
        "TASKGATE_LOG_LEVEL": "WARNING",
        "TASKGATE_LOG_PROFILE": "json",
        "TASKGATE_SIM_LATENCY_TURBO_S": "0",
        "TASKGATE_SIM_LATENCY_FAST_S": "0",
        "TASKGATE_SIM_LATENCY_RELAX_S": "0",
    }
    env.update({f"TASKGATE_{k.upper()}": str(v) for k, v in extra.items()})
    argv = ["upstream-sim", "--port", str(port)]
    return await start_taskgate(argv, env, f"http://127.0.0.1:{port}/sim/stats")


async def start_api(settings: Settings, **extra: Any) -> asyncio.subprocess.Process:
    """``taskgate api`` in its own process on ``settings.api_port`` (``extra``: more settings)."""
    env = role_env(settings, api_port=settings.api_port, api_host="127.0.0.1", **extra)
    return await start_taskgate(["api"], env, f"http://127.0.0.1:{settings.api_port}/healthz")


async def start_taskgate(argv: list[str], env: dict[str, str], ready_url: str) -> asyncio.subprocess.Process:
    """``python -m taskgate <argv>`` with ``env``, once ``ready_url`` answers (killed if it never does)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "taskgate",
        *argv,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await wait_http(ready_url, proc)
    return proc


async def wait_http(url: str, proc: asyncio.subprocess.Process, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline and proc.returncode is None:
            try:
                async with http.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    proc.kill()
    await proc.wait()
    raise RuntimeError(f"{url} did not answer")


async def stop_process(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
