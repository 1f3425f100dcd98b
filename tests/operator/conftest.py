"""The whole system with the worker's and scheduler's probe servers on, for the operator tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from taskgate.api.app import create_app
from taskgate.scheduler.runner import run_scheduler
from taskgate.services import build_services
from taskgate.settings import Settings
from taskgate.sim.server import create_sim_app
from taskgate.worker.runner import run_worker
from tests.e2e.conftest import System, _serve
from tests.redis_server import free_port

ADMIN = {"x-admin-token": "test-admin-token"}


class OpsSystem(System):
    async def scrape(self, url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Samples of a /metrics page: (name, sorted labels) -> value."""
        async with self.http.get(url + "/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
        }

    async def admin(self, method: str, path: str, **kwargs: object) -> tuple[int, dict]:
        return await self.call(method, path, headers=ADMIN, **kwargs)

    @property
    def worker_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.worker_probe_port}"

    @property
    def scheduler_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.scheduler_probe_port}"


@pytest.fixture
def ops_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "api_port": free_port(),
            "sim_port": free_port(),
            "worker_probe_port": free_port(),
            "scheduler_probe_port": free_port(),
            "sim_latency_fast_s": 0.1,
            "renew_interval_s": 0.2,
            "lease_ms": 3000,
            "sweep_interval_s": 0.2,
            "upstream_poll_interval_s": 0.02,
        }
    )


@pytest.fixture
async def ops(ops_settings: Settings) -> AsyncIterator[OpsSystem]:
    s = ops_settings
    services = await build_services(s)
    sim = await _serve(create_sim_app(s), s.sim_port)
    api = await _serve(create_app(s), s.api_port)
    stop = asyncio.Event()
    roles = [
        asyncio.create_task(run_scheduler(s, stop, probes=True)),
        asyncio.create_task(run_worker(s, stop, probes=True)),
    ]
    http = aiohttp.ClientSession()
    for port in (s.worker_probe_port, s.scheduler_probe_port):
        await _listening(port)
    try:
        yield OpsSystem(s, services, f"http://127.0.0.1:{s.api_port}", f"http://127.0.0.1:{s.sim_port}", http)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*roles), 30)
        await http.close()
        await api.cleanup()
        await sim.cleanup()
        await services.close()


async def _listening(port: int) -> None:
    """The roles start their probe servers after connecting: wait until the port accepts."""
    for _ in range(500):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError(f"nothing listens on {port}")
