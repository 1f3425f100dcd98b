"""The one place that starts throwaway ``redis-server`` processes on loopback, and picks free ports.

Used by ``taskgate dev``/``demo`` (a private Redis when none answers), the benchmarks (a Redis of
their own), the chaos cluster and Sentinel set (their argv), and the tests (which kill, SIGSTOP
and restart the server on the same port and data dir, hence a synchronous ``subprocess.Popen``)."""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from taskgate.store.connection import redis_answers

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


class RedisServerMissing(RuntimeError):
    """There is no ``redis-server`` on PATH, or it did not start."""


def free_port(preferred: int | None = None) -> int:
    """``preferred`` when it can be bound on loopback, else a free ephemeral port."""
    for port in ((preferred,) if preferred else ()) + (0,):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise OSError("no free loopback port")


def die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook that makes the child get SIGTERM if this process dies (Linux), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, int(signal.SIGTERM))


def find_redis_server(hint: str) -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisServerMissing(f"no redis-server on PATH: {hint}")
    return binary


def redis_argv(
    binary: str,
    port: int,
    data_dir: Path,
    *,
    appendonly: bool = False,
    logfile: bool = True,
    maxclients: int | None = None,
    replica_of: int | None = None,
) -> list[str]:
    """The command line of a loopback redis-server; AOF means ``appendfsync always`` (nothing lost)."""
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir), "--save", ""]
    argv += ["--appendonly", "yes", "--appendfsync", "always"] if appendonly else ["--appendonly", "no"]
    argv += ["--daemonize", "no"]
    if logfile:
        argv += ["--logfile", str(data_dir / "redis.log")]
    if maxclients is not None:
        argv += ["--maxclients", str(maxclients)]
    if replica_of is not None:
        argv += ["--replicaof", "127.0.0.1", str(replica_of)]
    return argv


class RedisProcess:
    """A redis-server on ``127.0.0.1:port`` (a free one unless given) in ``data_dir`` (a new temp dir
    unless given). ``start`` may be called again after ``kill``/``stop``: same port, same data."""

    def __init__(
        self,
        binary: str,
        *,
        port: int | None = None,
        data_dir: Path | None = None,
        appendonly: bool = False,
        maxclients: int | None = None,
        prefix: str = "taskgate-redis-",
        tied: bool = False,
    ) -> None:
        self.binary, self.appendonly, self.maxclients = binary, appendonly, maxclients
        self.tied = tied  # SIGTERM when the thread that started it dies (so start it on a long-lived one)
        self.port = port or free_port()
        self.dir = data_dir or Path(tempfile.mkdtemp(prefix=prefix))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def launch(self) -> None:
        """Start the process without waiting for it (``OSError`` when the binary cannot run)."""
        argv = redis_argv(
            self.binary, self.port, self.dir, appendonly=self.appendonly, maxclients=self.maxclients
        )
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C is ours to handle
            preexec_fn=die_with_parent() if self.tied else None,
        )

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Launch and wait until it answers PING; stop it and raise when it does not."""
        self.launch()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.running:
            if _pings(self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise RedisServerMissing(f"redis-server did not start on port {self.port}")

    async def start_async(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """``start`` without blocking the event loop."""
        self.launch()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline and self.running:
            if await redis_answers(self.url, timeout_s=0.5):
                return
            await asyncio.sleep(0.05)
        await asyncio.to_thread(self.stop)
        raise RedisServerMissing(f"redis-server did not start on port {self.port}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT_S)

    def stop(self) -> None:
        """SIGTERM (after SIGCONT, in case a test stopped it), SIGKILL when it does not exit in time."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class ThrowawayRedis:
    """``async with ThrowawayRedis() as server: server.url`` — no persistence, stopped and removed on
    exit. For a benchmark run: a Redis of its own that nothing else writes to."""

    def __init__(self) -> None:
        self.url = ""
        self.server: RedisProcess | None = None

    async def __aenter__(self) -> ThrowawayRedis:
        binary = find_redis_server("install it or pass --redis-url")
        self.server = RedisProcess(binary, prefix="taskgate-bench-redis-")
        try:
            await self.server.start_async()
        except BaseException:
            await self.stop()
            raise
        self.url = self.server.url
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await asyncio.to_thread(server.cleanup)


def _pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False
