"""Shared fixtures: one throwaway redis-server per test session (per xdist worker: each is a session of
its own); a fresh key prefix per test; the whole system in the test process (``tests/system.py``)."""

from __future__ import annotations

import os
import resource
from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from taskgate.settings import Settings
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts
from tests.redis_server import RedisServer, free_port
from tests.scheduling import make_scheduler
from tests.system import OpsSystem, System, running_system, tuned


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``--dist loadscope`` with the scopes of ``tests/scheduling.py``; other modes as xdist has them."""
    return make_scheduler(config, log) if config.getvalue("dist") == "loadscope" else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Modules with a test marked ``slow`` first, in their order; the rest after, in theirs. Under
    xdist (`make test`: ``--no-loadscope-reorder`` keeps this order) the longest tests then start
    at once rather than last, where they would make the run's tail."""
    slow = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("TASKGATE_TEST_REDIS_URL")
    if url:
        yield url
        return
    server = RedisServer()
    server.start()
    try:
        yield server.url
    finally:
        server.cleanup()


@pytest.fixture
def prefix() -> str:
    return f"t:{uuid4().hex[:12]}"


@pytest.fixture
def keys(prefix: str) -> Keys:
    return Keys(prefix)


@pytest.fixture
def settings(redis_url: str, prefix: str) -> Settings:
    return Settings(
        redis_url=redis_url,
        key_prefix=prefix,
        admin_token="test-admin-token",  # type: ignore[arg-type]
        webhook_allow_private=True,
        log_profile="console",
    )


@pytest.fixture
async def redis(redis_url: str, keys: Keys) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        async for key in client.scan_iter(match=keys.pattern(), count=1000):
            await client.delete(key)
        await client.aclose()


@pytest.fixture
async def scripts(redis: Redis) -> Scripts:
    return Scripts(redis)


@pytest.fixture
def system_settings(settings: Settings) -> Settings:
    return tuned(settings)


@pytest.fixture
async def system(system_settings: Settings) -> AsyncIterator[System]:
    async with running_system(system_settings) as running:
        yield running


@pytest.fixture
def ops_settings(settings: Settings) -> Settings:
    return tuned(settings, worker_probe_port=free_port(), scheduler_probe_port=free_port())


@pytest.fixture
async def ops(ops_settings: Settings) -> AsyncIterator[OpsSystem]:
    async with running_system(ops_settings, probes=True, kind=OpsSystem) as running:
        assert isinstance(running, OpsSystem)
        yield running


# --- TASKGATE_TEST_CPU=1: the tests that cost the most CPU (this process + reaped children) ---------
_CPU: list[tuple[float, str]] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    if not os.environ.get("TASKGATE_TEST_CPU"):
        return (yield)
    before = _cpu_s()
    try:
        return (yield)
    finally:
        _CPU.append((_cpu_s() - before, item.nodeid))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _CPU:
        terminalreporter.write_sep("=", f"CPU seconds: {sum(c for c, _ in _CPU):.1f} in all; the most")
        for cpu, nodeid in sorted(_CPU, reverse=True)[:30]:
            terminalreporter.write_line(f"{cpu:7.2f}s cpu  {nodeid}")


def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
