"""The whole system in the test process: upstream simulator, API, scheduler and worker, each the real
component on its own loopback port / Redis connection. One set-up for the e2e, compat, operator, HA
and crash tests (their fixtures are in ``tests/conftest.py``): tuned settings on a compressed clock,
and ``running_system`` to start and stop the parts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from taskgate.api.app import create_app
from taskgate.pool.registry import AccountSpec
from taskgate.scheduler.runner import run_scheduler
from taskgate.services import Services, build_services
from taskgate.settings import Settings
from taskgate.sim.server import create_sim_app
from taskgate.worker.runner import run_worker
from tests.redis_server import free_port

ADMIN = {"x-admin-token": "test-admin-token"}
ROLES_STOP_S = 30.0  # a role that does not stop within this is a bug, not a slow machine


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

    async def imagine(
        self, api_key: str, prompt: str, *, mode: str = "fast", config: dict | None = None
    ) -> tuple[int, dict]:
        """POST a Midjourney imagine task (the simulator reads ``[sim ...]`` directives in ``prompt``)."""
        body: dict[str, Any] = {
            "model": "midjourney",
            "task_type": "imagine",
            "input": {"prompt": prompt, "process_mode": mode},
        }
        if config is not None:
            body["config"] = config
        return await self.call("POST", "/api/v1/task", api_key, json=body)

    async def wait_final(self, api_key: str, task_id: str, timeout_s: float = 30) -> dict:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            _, body = await self.call("GET", f"/api/v1/task/{task_id}", api_key)
            if body["data"]["status"] in ("completed", "failed"):
                return body["data"]
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"task {task_id} not final: {body['data']['status']}")
            await asyncio.sleep(0.02)


class OpsSystem(System):
    """The system with the worker's and scheduler's probe servers on, for the operator tests."""

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


def tuned(settings: Settings, **changes: Any) -> Settings:
    """``settings`` on free ports and a compressed clock: short simulated jobs, leases, sweeps, polls."""
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
            **changes,
        }
    )


async def serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@asynccontextmanager
async def running_system(
    s: Settings,
    *,
    worker: bool = True,
    probes: bool = False,
    kind: type[System] = System,
    stop_timeout_s: float = ROLES_STOP_S,
    tolerate_role_errors: bool = False,
) -> AsyncIterator[System]:
    """Simulator, API and scheduler (and the worker unless ``worker=False``) in this event loop.
    ``probes``: the roles' probe servers too, waited for until they accept connections."""
    services = await build_services(s)
    runners = [await serve(create_sim_app(s), s.sim_port), await serve(create_app(s), s.api_port)]
    stop = asyncio.Event()
    roles = [asyncio.create_task(run_scheduler(s, stop, probes=probes))]
    if worker:
        roles.append(asyncio.create_task(run_worker(s, stop, probes=probes)))
    http = aiohttp.ClientSession()
    try:
        if probes:
            for port in (s.scheduler_probe_port, *([s.worker_probe_port] if worker else [])):
                await listening(port)
        yield kind(s, services, f"http://127.0.0.1:{s.api_port}", f"http://127.0.0.1:{s.sim_port}", http)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*roles, return_exceptions=tolerate_role_errors), stop_timeout_s)
        await http.close()
        for runner in reversed(runners):
            await runner.cleanup()
        await services.close()


async def listening(port: int, timeout_s: float = 30.0) -> None:
    """Until something accepts connections on ``port`` (a role starts its probe server after connecting)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError(f"nothing listens on {port}")
