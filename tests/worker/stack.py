"""A real scheduler and worker against a real simulator (and, with ``api=True``, the API for
upstream callbacks), with one shared sim account; the simulator counts the polls it receives."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import SecretStr

from taskgate.api.app import create_app
from taskgate.pool.registry import AccountSpec
from taskgate.scheduler.runner import run_scheduler
from taskgate.services import Services, build_services
from taskgate.settings import Settings
from taskgate.sim.server import create_sim_app
from taskgate.worker.runner import run_worker
from tests.system import serve


class PollLog:
    def __init__(self) -> None:
        self.submits: dict[str, float] = {}
        self.polls: dict[str, list[float]] = defaultdict(list)
        self.all_polls: list[float] = []

    @web.middleware
    async def middleware(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        now = asyncio.get_running_loop().time()
        response = await handler(request)
        if request.method == "GET" and request.path.startswith("/v1/jobs/"):
            self.polls[request.match_info["job_id"]].append(now)
            self.all_polls.append(now)
        return response


async def running_stack(
    settings: Settings, log: PollLog, api_key: str, *, api: bool = False
) -> AsyncIterator[Services]:
    sim_app = create_sim_app(settings)
    sim_app.middlewares.append(log.middleware)
    services = await build_services(settings)
    runners = [await serve(sim_app, settings.sim_port)]
    if api:
        runners.append(await serve(create_app(settings, services), settings.api_port))
    stop = asyncio.Event()
    roles = [
        asyncio.create_task(run_scheduler(settings, stop)),
        asyncio.create_task(run_worker(settings, stop)),
    ]
    try:
        await services.accounts.add(
            AccountSpec(
                owner="shared",
                provider="sim",
                base_url=f"http://127.0.0.1:{settings.sim_port}",
                api_key=SecretStr(api_key),
                capacity=20,
            )
        )
        yield services
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*roles), 30)
        for runner in runners:
            await runner.cleanup()
        await services.close()
