"""A taskgate worker process with counters, for the benchmarks: the same worker ``taskgate worker``
runs (``worker.runner.build_worker`` and the webhook dispatcher), with its upstream calls and lease
renewals counted and its CPU time sampled every ``sample_s`` seconds as JSON lines on stdout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from taskgate.providers import build_provider
from taskgate.providers.base import AccountAccess, Provider, UpstreamRequest, UpstreamStatus
from taskgate.services import build_services
from taskgate.settings import Settings
from taskgate.webhooks.outbox import WebhookDispatcher
from taskgate.worker.execution import TaskRunner
from taskgate.worker.runner import PROVIDER_NAMES, build_worker


class CountingProvider:
    """Delegates to a provider and counts its calls."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.submits = 0
        self.polls = 0

    async def submit(self, access: AccountAccess, request: UpstreamRequest) -> str:
        self.submits += 1
        return await self.inner.submit(access, request)

    async def poll(self, access: AccountAccess, upstream_id: str) -> UpstreamStatus:
        self.polls += 1
        return await self.inner.poll(access, upstream_id)

    async def cancel(self, access: AccountAccess, upstream_id: str) -> bool:
        return await self.inner.cancel(access, upstream_id)

    async def probe(self, access: AccountAccess) -> None:
        await self.inner.probe(access)


async def run_probed_worker(
    settings: Settings, sample_s: float, wait_go: Callable[[], Awaitable[float]]
) -> None:
    services = await build_services(settings)
    session = aiohttp.ClientSession()
    counted = {
        n: CountingProvider(build_provider(n, session, settings.upstream_timeout_s)) for n in PROVIDER_NAMES
    }
    providers: dict[str, Provider] = dict(counted)
    worker = build_worker(settings, services, providers)
    runner: TaskRunner = worker.ctx["runner"]
    webhooks = WebhookDispatcher(
        services.redis, services.scripts, services.keys, settings, view=services.tasks.view
    )
    await wait_go()
    stop = asyncio.Event()
    loops = [asyncio.create_task(worker.async_run()), asyncio.create_task(webhooks.run_forever(stop))]
    while True:
        calls, renewed = runner.leases.stats.calls, runner.leases.stats.renewed
        sample: dict[str, Any] = {
            "t": time.time(),
            "cpu_s": time.process_time(),
            "running": runner.watcher.inflight,  # attempts held (submitting or watched)
            "jobs": worker.job_counter,  # arq jobs running (submits in progress)
            "wakes": runner.watcher.stats.wakes,
            "submits": sum(p.submits for p in counted.values()),
            "polls": sum(p.polls for p in counted.values()),
            "renew_calls": calls,
            "renewed": renewed,
        }
        from taskgate.bench.roles import emit

        emit(sample)
        if any(t.done() for t in loops):
            break
        await asyncio.sleep(sample_s)
    for t in loops:
        if t.done() and not t.cancelled() and t.exception() is not None:
            raise RuntimeError("worker loop ended") from t.exception()
