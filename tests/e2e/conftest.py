"""The whole system in the test process: upstream simulator, API, scheduler and worker, each the
real component on its own loopback port / Redis connection, on the session's throwaway Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from taskgate.api.app import create_app
from taskgate.pool.registry import AccountSpec
from taskgate.scheduler.runner import run_scheduler
from taskgate.services import Services, build_services
from taskgate.settings import Settings
from taskgate.sim.server import create_sim_app
from taskgate.worker.runner import run_worker
from tests.redis_server import free_port


@dataclass
class System:
    settings: Settings
    services: Services
    api_url: str
    sim_url: str
    http: aiohttp.ClientSession

    async def user(self, plan: str = "free", **kwargs: Any) -> tuple[str, str]:
        return await self.services.users.create(plan, **kwargs)

    async def shared_account(self, capacity: int = 10, **kwargs: Any) -> str:
        spec = AccountSpec(
            owner="shared",
            provider="sim",
            base_url=self.sim_url,
            api_key=SecretStr(f"sim-key-{capacity}-{id(kwargs)}"),
            capacity=capacity,
            **kwargs,
        )
        return await self.services.accounts.add(spec)

    async def call(
        self, method: str, path: str, api_key: str | None = None, **kwargs: Any
    ) -> tuple[int, dict]:
        headers = dict(kwargs.pop("headers", {}))
        if api_key is not None:
            headers["x-api-key"] = api_key
        async with self.http.request(method, self.api_url + path, headers=headers, **kwargs) as resp:
            return resp.status, await resp.json(content_type=None)

    async def wait_final(self, api_key: str, task_id: str, timeout_s: float = 30) -> dict:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            _, body = await self.call("GET", f"/api/v1/task/{task_id}", api_key)
            if body["data"]["status"] in ("completed", "failed"):
                return body["data"]
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"task {task_id} not final: {body['data']['status']}")
            await asyncio.sleep(0.02)


async def _serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@pytest.fixture
def system_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "api_port": free_port(),
            "sim_port": free_port(),
            "sim_latency_turbo_s": 0.05,
            "sim_latency_fast_s": 0.1,
            "sim_latency_relax_s": 0.2,
            "renew_interval_s": 0.2,
            "lease_ms": 3000,
            "sweep_interval_s": 0.2,
            "upstream_poll_interval_s": 0.02,
        }
    )


@pytest.fixture
async def system(system_settings: Settings) -> AsyncIterator[System]:
    s = system_settings
    services = await build_services(s)
    sim = await _serve(create_sim_app(s), s.sim_port)
    api = await _serve(create_app(s), s.api_port)
    stop = asyncio.Event()
    roles = [asyncio.create_task(run_scheduler(s, stop)), asyncio.create_task(run_worker(s, stop))]
    http = aiohttp.ClientSession()
    try:
        yield System(s, services, f"http://127.0.0.1:{s.api_port}", f"http://127.0.0.1:{s.sim_port}", http)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*roles), 30)
        await http.close()
        await api.cleanup()
        await sim.cleanup()
        await services.close()
