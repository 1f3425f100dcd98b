"""``taskgate dev``: every role in one process, against a Redis that answers or a private one."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from taskgate.dev.server import EXIT_NO_REDIS, PrivateRedis, RedisUnavailable, run_dev
from taskgate.settings import Settings
from taskgate.store.connection import redis_answers
from tests.redis_server import free_port

START_BOUND_S = 60.0  # generous bounds for a loaded machine; not timing assertions
STOP_BOUND_S = 60.0
PRIVATE_LINE = re.compile(r"redis-server \(pid (\d+)\) at (redis://\S+), data dir (\S+),")


def unreachable_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # a free port: nothing listens there


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- PrivateRedis, in process ---------------------------------------------------------------------


async def test_private_redis_uses_the_configured_redis_when_it_answers(settings: Settings) -> None:
    async with PrivateRedis(settings) as redis:
        assert not redis.private and redis.url == settings.redis_url and redis.pid is None


async def test_private_redis_starts_and_removes_its_own_server(settings: Settings) -> None:
    wanted = settings.model_copy(update={"redis_url": unreachable_url()})
    async with PrivateRedis(wanted) as redis:
        assert redis.private and redis.url != wanted.redis_url
        assert await redis_answers(redis.url)
        pid, data_dir = redis.pid, redis.dir
        assert pid is not None and data_dir is not None and data_dir.is_dir()
    assert not pid_alive(pid)
    assert not data_dir.exists()
    assert not redis.private


async def test_private_redis_with_a_missing_binary_fails_cleanly(settings: Settings, tmp_path: Path) -> None:
    wanted = settings.model_copy(update={"redis_url": unreachable_url()})
    private = PrivateRedis(wanted, binary=str(tmp_path / "no-such-redis-server"))
    with pytest.raises(RedisUnavailable, match="no-such-redis-server"):
        async with private:
            pass
    assert private.proc is None and private.dir is None and not private.private


# --- run_dev, in process --------------------------------------------------------------------------


async def test_run_dev_serves_every_part_and_stops_cleanly(settings: Settings) -> None:
    settings = settings.model_copy(update={"api_port": free_port(), "sim_port": free_port()})
    stop, ready = asyncio.Event(), asyncio.Event()
    dev = asyncio.create_task(run_dev(settings, stop=stop, ready=ready))
    await asyncio.wait({dev, asyncio.ensure_future(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
    assert not dev.done(), dev.exception()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{settings.api_port}/healthz") as resp:
            assert resp.status == 200
        async with session.get(f"http://127.0.0.1:{settings.sim_port}/sim/stats") as resp:
            assert resp.status == 200
    stop.set()
    await dev  # returns normally: every part shut down
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session:
            await session.get(f"http://127.0.0.1:{settings.api_port}/healthz")


# --- `taskgate dev` as a process ------------------------------------------------------------------


def dev_env(redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKGATE_")}
    env.update(
        TASKGATE_REDIS_URL=redis_url,
        TASKGATE_KEY_PREFIX=prefix,
        TASKGATE_LOG_PROFILE="json",
        TASKGATE_ADMIN_TOKEN="test-admin-token",
        **extra,
    )
    return env


class DevProcess:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.api_port, self.sim_port = free_port(), free_port()
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "taskgate",
                    "dev",
                    "--port",
                    str(self.api_port),
                    "--sim-port",
                    str(self.sim_port),
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_BOUND_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"taskgate dev exited early:\n{self.output}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail(f"taskgate dev did not answer /healthz:\n{self.output}")

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(STOP_BOUND_S)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


StartDev = Callable[[dict[str, str]], DevProcess]


@pytest.fixture
def start_dev(tmp_path: Path) -> Iterator[StartDev]:
    started: list[DevProcess] = []

    def start(env: dict[str, str]) -> DevProcess:
        dev = DevProcess(env, tmp_path / f"dev-{len(started)}.log")
        started.append(dev)
        return dev

    yield start
    for dev in started:
        dev.kill()


def test_dev_process_uses_the_configured_redis_and_exits_0_on_sigterm(
    start_dev: StartDev, redis_url: str, prefix: str, redis: object
) -> None:
    dev = start_dev(dev_env(redis_url, prefix))
    dev.wait_healthy()
    assert dev.terminate() == 0, dev.output
    assert "private redis-server" not in dev.output
    assert '"event": "dev_stopped"' in dev.output


def test_dev_process_starts_a_private_redis_and_removes_it_on_sigterm(
    start_dev: StartDev, prefix: str
) -> None:
    dev = start_dev(dev_env(unreachable_url(), prefix))
    dev.wait_healthy()
    found = PRIVATE_LINE.search(dev.output)
    assert found, dev.output
    pid, url, data_dir = int(found[1]), found[2], Path(found[3])
    assert pid_alive(pid) and data_dir.is_dir()
    assert dev.terminate() == 0, dev.output
    assert not pid_alive(pid)
    assert not data_dir.exists()
    assert not asyncio.run(redis_answers(url))


def test_dev_process_without_redis_or_redis_server_exits_2(
    start_dev: StartDev, prefix: str, tmp_path: Path
) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    dev = start_dev(dev_env(unreachable_url(), prefix, PATH=str(empty_bin)))
    assert dev.proc.wait(START_BOUND_S) == EXIT_NO_REDIS, dev.output
    assert "no redis-server on PATH" in dev.output
