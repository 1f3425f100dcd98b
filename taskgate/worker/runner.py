"""The worker process: an arq worker submitting dispatched attempts, the watcher holding them until
they end (worker/watcher.py), plus webhook delivery."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any

import aiohttp
import structlog

from taskgate.metrics.probes import Liveness, create_probe_app, serve_probes
from taskgate.metrics.process import ProcessMetrics
from taskgate.metrics.tasks import observe_attempt
from taskgate.pool.health import AccountHealth
from taskgate.providers import build_provider
from taskgate.providers.base import Provider
from taskgate.services import Services, build_services
from taskgate.settings import Settings
from taskgate.store.connection import arq_redis_settings, close_sentinels
from taskgate.webhooks.outbox import WebhookDispatcher
from taskgate.worker.arq_worker import WakeWorker, job_deserializer, job_serializer
from taskgate.worker.execution import WATCHED, TaskRunner
from taskgate.worker.settle import Ended

log = structlog.get_logger(__name__)

PROVIDER_NAMES = ("sim", "goapi")


async def run_task(
    ctx: dict[str, Any], task_id: str, attempt: int, task_hash: dict[str, str] | None = None
) -> str:
    """The arq job that dispatch enqueues (from Lua): submit one attempt and hand it to the watcher.
    ``task_hash``: the task as the worker's claim read it (WakeWorker); None: read it here."""
    runner: TaskRunner = ctx["runner"]
    metrics: ProcessMetrics = ctx["metrics"]
    with structlog.contextvars.bound_contextvars(task_id=task_id, attempt=attempt):
        metrics.jobs_in_flight.inc()
        try:
            # nothing may come between the job's start and runner.run: a cancellation there would
            # skip the hand-back; an attempt is observed once it has ended (by the watcher if watched)
            ended = await runner.run(task_id, int(attempt), task_hash=task_hash)
        finally:
            metrics.jobs_in_flight.dec()
        if ended is not WATCHED:
            _observe(metrics, task_id, int(attempt), ended)
        return ended.status


def _observe(metrics: ProcessMetrics, task_id: str, attempt: int, ended: Ended) -> None:
    """Count an ended attempt from the fields finish_task returned; metrics never fail a job."""
    try:
        observe_attempt(metrics, attempt, ended.status, ended.task)
    except Exception:
        log.warning("metrics_observation_failed", task_id=task_id, attempt=attempt, exc_info=True)


def build_worker(
    settings: Settings,
    services: Services,
    providers: dict[str, Provider],
    metrics: ProcessMetrics | None = None,
) -> WakeWorker:
    metrics = metrics if metrics is not None else ProcessMetrics("worker")
    metrics.max_jobs.set(settings.worker_max_jobs)
    health = AccountHealth(services.redis, services.scripts, services.keys, settings)
    runner = TaskRunner(services.tasks, services.accounts, providers, settings, health)
    ctx = {"runner": runner, "metrics": metrics}
    runner.watcher.on_ended = functools.partial(_observe, metrics)
    metrics.attempts_held.set_function(lambda: runner.watcher.inflight)
    metrics.max_inflight.set(settings.worker_max_inflight)
    return WakeWorker(
        functions=[run_task],
        keys=services.keys,
        scripts=services.scripts,
        room=runner.watcher.room,
        queue_name=services.keys.arq_queue(),
        redis_settings=arq_redis_settings(settings),
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
        max_jobs=settings.worker_max_jobs,
        job_timeout=settings.job_timeout_s,
        keep_result=0,
        max_tries=1,  # a lost attempt is recovered by its lease, not by arq re-running the job
        poll_delay=settings.worker_poll_delay_s,
        handle_signals=False,
        ctx=ctx,
        health_check_interval=60,
    )


async def run_worker(settings: Settings, stop: asyncio.Event, *, probes: bool = False) -> None:
    """Run until ``stop``; with ``probes`` serve /metrics, /healthz, /readyz on the worker probe port."""
    services = await build_services(settings, "worker", stop)
    session = aiohttp.ClientSession()
    providers = {name: build_provider(name, session, settings.upstream_timeout_s) for name in PROVIDER_NAMES}
    metrics = ProcessMetrics("worker")
    worker = build_worker(settings, services, providers, metrics)
    main = asyncio.create_task(worker.async_run())
    background = [asyncio.create_task(t) for t in _background(settings, services, providers, stop, metrics)]
    probe_runner = None
    if probes and settings.worker_probe_port:
        liveness = Liveness(settings.liveness_stale_s)
        background.append(asyncio.create_task(_beat_while_running(liveness, main)))
        probe_runner = await serve_probes(
            create_probe_app(metrics, liveness, services.redis),
            settings.probe_host,
            settings.worker_probe_port,
        )
    log.info("worker_started", max_jobs=settings.worker_max_jobs, max_inflight=settings.worker_max_inflight)
    try:
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({main, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if main.done() and not main.cancelled() and main.exception() is not None:
            log.error("worker_main_loop_ended", error=repr(main.exception()))
        await _shutdown(worker, main, settings.worker_shutdown_grace_s)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        arq_pool = worker._pool  # noqa: SLF001 - arq drops it on close but leaves its sentinels open
        with contextlib.suppress(Exception):  # Redis may be gone at shutdown; leases cover it
            await worker.close()
        if arq_pool is not None:
            await close_sentinels(arq_pool)
        await session.close()
        if probe_runner is not None:
            await probe_runner.cleanup()
        await services.close()
        log.info("worker_stopped")


async def _beat_while_running(liveness: Liveness, main: asyncio.Task[None]) -> None:
    """Liveness of a worker: arq's job loop is still running and this event loop is not blocked."""
    while not main.done():
        liveness.beat()
        await asyncio.sleep(1.0)


def _background(
    settings: Settings,
    services: Services,
    providers: dict[str, Provider],
    stop: asyncio.Event,
    metrics: ProcessMetrics,
) -> list[Any]:
    webhooks = WebhookDispatcher(
        services.redis, services.scripts, services.keys, settings, view=services.tasks.view
    )
    webhooks.on_result = lambda result: metrics.webhook_deliveries.labels(result).inc()
    return [webhooks.run_forever(stop), _probe_loop(settings, services, providers, stop)]


async def _probe_loop(
    settings: Settings, services: Services, providers: dict[str, Provider], stop: asyncio.Event
) -> None:
    """S9: auto-disabled and captcha accounts come back only through a passing health probe."""
    health = AccountHealth(services.redis, services.scripts, services.keys, settings)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.probe_interval_s)
        if stop.is_set():
            return
        try:
            await health.probe_all(services.accounts, providers)
        except Exception:
            log.exception("account_probes_failed")


async def _shutdown(worker: WakeWorker, main: asyncio.Task[None], grace_s: float) -> None:
    """Stop taking jobs, let running and watched attempts finish for a grace period, then hand the
    rest back: submitting jobs are cancelled (TaskRunner hands back), then the watcher's."""
    worker.allow_pick_jobs = False
    runner: TaskRunner = worker.ctx["runner"]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_running_done(worker, runner), grace_s)
    for task in list(worker.tasks.values()):
        task.cancel()  # TaskRunner hands the attempt back on cancellation
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    handed = await runner.watcher.hand_back_all()
    if handed:
        log.info("watched_attempts_handed_back", count=handed)
    main.cancel()
    await asyncio.gather(main, return_exceptions=True)


async def _running_done(worker: WakeWorker, runner: TaskRunner) -> None:
    while any(not t.done() for t in worker.tasks.values()):
        await asyncio.sleep(0.05)
    await runner.watcher.idle()
