"""A taskgate cluster as real processes for the chaos suite: a redis-server (AOF, appendfsync
always) that can be killed and restarted on the same port and data dir, the upstream simulator,
the API, N schedulers and N workers, each a subprocess that can be SIGKILLed and restarted."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from taskgate.store.connection import redis_answers
from taskgate.store.redis_launcher import die_with_parent, free_port, redis_argv

if TYPE_CHECKING:
    from taskgate.bench.sentinel_set import SentinelSet

STOP_TIMEOUT_S = 20.0


class Proc:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.argv, self.env, self.log_dir = name, argv, env, log_dir
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.log_dir / f"{self.name}.{self.starts}.log", "wb")  # noqa: SIM115 - owned by the process
        self.popen = subprocess.Popen(  # dies with this process, so a killed run leaves no orphans
            self.argv,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        log.close()

    async def wait_logged(self, event: str, timeout_s: float = 120.0) -> None:
        """Until this start's log has the JSON line of ``event`` (a process starts slowly under load)."""
        path, needle = self.log_dir / f"{self.name}.{self.starts}.log", f'"event": "{event}"'
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            if path.exists() and needle in path.read_text(errors="replace"):
                return
            if self.popen is not None and self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.popen.returncode} before {event}")
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.name}: no {event} within {timeout_s} s")

    def signal(self, sig: int) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.kill(self.popen.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(10)

    def stop(self) -> None:
        stop_all([self])

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


def stop_all(procs: Iterable[Proc], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM (after SIGCONT) every process at once, then wait for each; SIGKILL when one is not
    gone within ``timeout_s``. At once: one by one, each shutdown was waited for in turn."""
    live = [p for p in procs if p.running]
    for proc in live:
        proc.signal(signal.SIGCONT)
        proc.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for proc in live:
        assert proc.popen is not None
        try:
            proc.popen.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


class Cluster:
    """``sentinel=True``: Redis is a master + replica + three Sentinels (``self.sentinel``) and
    every process connects through Sentinel, with ``min_replicas_ack`` as the durability option."""

    def __init__(
        self,
        *,
        schedulers: int = 1,
        workers: int = 2,
        lease_ms: int = 2000,
        seed: int = 1,
        sentinel: bool = False,
        min_replicas_ack: int = 0,
        callbacks: bool = False,
    ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="taskgate-chaos-"))
        self.redis_port, self.api_port, self.sim_port = (free_port() for _ in range(3))
        self.sentinel: SentinelSet | None = None
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        if sentinel:
            from taskgate.bench.sentinel_set import SentinelSet  # it builds on Proc, defined here

            self.sentinel = SentinelSet()
            self.redis_url = self.sentinel.url
        self.env = {
            **os.environ,
            "TASKGATE_REDIS_URL": self.redis_url,
            "TASKGATE_KEY_PREFIX": "chaos",
            "TASKGATE_ADMIN_TOKEN": "chaos-admin",
            "TASKGATE_LEASE_MS": str(lease_ms),
            "TASKGATE_RENEW_INTERVAL_S": str(lease_ms / 5000),
            "TASKGATE_SWEEP_INTERVAL_S": "0.2",
            "TASKGATE_UPSTREAM_POLL_INTERVAL_S": "0.05",
            "TASKGATE_LOG_PROFILE": "json",
            "TASKGATE_API_PORT": str(self.api_port),
            "TASKGATE_SIM_PORT": str(self.sim_port),
            "TASKGATE_WORKER_SHUTDOWN_GRACE_S": "2",
            "TASKGATE_WEBHOOK_ALLOW_PRIVATE": "true",
            "TASKGATE_MAX_ATTEMPTS": "50",
            "TASKGATE_WEBHOOK_TIMEOUT_S": "1.5",
            "TASKGATE_SIM_SEED": str(seed),  # --seed repeats the simulator's jitter too
            # a compressed clock: retries and the claim of a killed sender's delivery in seconds, not
            # the production day-long schedule (the figures measured are the same: lost / order / 410)
            "TASKGATE_WEBHOOK_RETRY_DELAYS_S": "[0.5, 1, 1, 2, 2, 4, 4, 8, 8, 15]",
            "TASKGATE_WEBHOOK_CLAIM_MS": "4000",
            "TASKGATE_REDIS_MIN_REPLICAS_ACK": str(min_replicas_ack),
            "TASKGATE_REDIS_WAIT_TIMEOUT_MS": "1000",
        }
        if callbacks:  # the simulator calls the API back; polling is the safety net
            self.env |= {
                "TASKGATE_CALLBACK_BASE_URL": self.api_url,
                "TASKGATE_CALLBACK_SECRET": "chaos-callback",
            }
        py = [sys.executable, "-m", "taskgate"]
        binary = shutil.which("redis-server") or "redis-server"
        argv = redis_argv(binary, self.redis_port, self.dir, appendonly=True, logfile=False)
        self.redis = Proc("redis", argv, self.env, self.dir)
        self.sim = Proc("sim", [*py, "upstream-sim", "--port", str(self.sim_port)], self.env, self.dir)
        self.api = Proc("api", [*py, "api", "--port", str(self.api_port)], self.env, self.dir)
        self.schedulers = [
            Proc(f"scheduler{i}", [*py, "scheduler"], self.env, self.dir) for i in range(schedulers)
        ]
        self.workers = [Proc(f"worker{i}", [*py, "worker"], self.env, self.dir) for i in range(workers)]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    async def start_redis(self) -> None:
        self.redis.start()
        for _ in range(200):
            if await redis_answers(self.redis_url, 0.2):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    async def wait_api(self, timeout_s: float = 30.0) -> None:
        """Until the API accepts connections (a restarted API imports for a while under load)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.api_port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return

    async def start(self) -> None:
        if self.sentinel is not None:
            await asyncio.to_thread(self.sentinel.start)
        else:
            await self.start_redis()
        for proc in (self.sim, self.api, *self.schedulers, *self.workers):
            proc.start()
        # faults and the run's clock start once every process is up, not while they still import
        await self.sim.wait_logged("sim_started")
        await self.wait_api()
        for proc in self.schedulers:
            await proc.wait_logged("scheduler_started")
        for proc in self.workers:
            await proc.wait_logged("worker_started")

    def stop(self) -> None:
        # tier by tier, so the roles still reach the API's simulator and Redis while they stop
        for tier in ((*self.workers, *self.schedulers), (self.api, self.sim), (self.redis,)):
            stop_all(tier)
        if self.sentinel is not None:
            self.sentinel.stop()
        if not os.environ.get("TASKGATE_CHAOS_KEEP_LOGS"):
            shutil.rmtree(self.dir, ignore_errors=True)
