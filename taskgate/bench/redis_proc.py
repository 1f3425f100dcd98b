"""A throwaway ``redis-server`` for a benchmark run: a free loopback port, a temp dir, no persistence.

Benchmarks measure memory and server time, so they want a Redis of their own that nothing else
writes to; ``--redis-url`` points them at an existing one instead."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from taskgate.devserver import free_loopback_port
from taskgate.store.connection import redis_answers

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


class RedisServerMissing(RuntimeError):
    """There is no ``redis-server`` on PATH, or it did not start."""


class ThrowawayRedis:
    """``async with ThrowawayRedis() as server: server.url`` — stopped and removed on exit."""

    def __init__(self) -> None:
        self.url = ""
        self.dir: Path | None = None
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> ThrowawayRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerMissing("no redis-server on PATH: install it or pass --redis-url")
        self.dir = Path(tempfile.mkdtemp(prefix="taskgate-bench-redis-"))
        port = free_loopback_port()
        self.proc = await asyncio.create_subprocess_exec(
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            str(self.dir / "redis.log"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        url = f"redis://127.0.0.1:{port}/0"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while loop.time() < deadline and self.proc.returncode is None:
            if await redis_answers(url, timeout_s=0.5):
                self.url = url
                return self
            await asyncio.sleep(0.05)
        await self.stop()
        raise RedisServerMissing(f"redis-server did not start on port {port}")

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
