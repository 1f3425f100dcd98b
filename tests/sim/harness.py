"""A simulator on a real loopback port with a hand-driven clock, for sim and adapter tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from taskgate.settings import Settings
from taskgate.sim.server import SIM_STATE, create_sim_app
from taskgate.sim.state import SimState


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def sim_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "sim_latency_turbo_s": 0.3,
        "sim_latency_fast_s": 0.8,
        "sim_latency_relax_s": 2.0,
        "sim_failure_rate": 0.0,
        "sim_incorrect_rate": 0.0,
        "sim_captcha_rate": 0.0,
        "sim_ban_rate": 0.0,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Sim:
    server: TestServer
    state: SimState
    clock: FakeClock
    http: ClientSession

    @property
    def base_url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def submit(
        self,
        api_key: str,
        prompt: str = "a cat",
        *,
        mode: str = "fast",
        key: str = "task-1",
        model: str = "midjourney",
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        body = {
            "model": model,
            "task_type": "imagine",
            "mode": mode,
            "input": {"prompt": prompt},
            "idempotency_key": key,
        }
        async with self.http.post(f"{self.base_url}/v1/jobs", json=body, headers={"x-api-key": api_key}) as r:
            return r.status, await r.json(), dict(r.headers)

    async def get(self, path: str, api_key: str = "") -> tuple[int, Any]:
        headers = {"x-api-key": api_key} if api_key else {}
        async with self.http.get(f"{self.base_url}{path}", headers=headers) as r:
            return r.status, await r.json()

    async def post(self, path: str, body: Any = None, api_key: str = "") -> tuple[int, Any]:
        headers = {"x-api-key": api_key} if api_key else {}
        async with self.http.post(f"{self.base_url}{path}", json=body, headers=headers) as r:
            return r.status, await r.json()


@asynccontextmanager
async def running_sim(settings: Settings | None = None, *, seed: int | None = 7) -> AsyncIterator[Sim]:
    app = create_sim_app(settings or sim_settings(), seed=seed)
    clock = FakeClock()
    app[SIM_STATE].clock = clock
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with ClientSession() as http:
            yield Sim(server, app[SIM_STATE], clock, http)
    finally:
        await server.close()
