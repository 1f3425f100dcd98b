"""The scheduler process: wake on new work or freed slots, dispatch, and sweep expired leases.

It blocks on a Redis list (BLPOP) that every enqueue and release pushes a token to, so a decision
follows new work within one round trip (and at most ``dispatch_min_interval_ms`` after the last
round, so that under load one call books many freed slots); the timeout is the slow safety sweep."""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from taskgate.catalogue.spec import Catalogue
from taskgate.errors import RedisUnavailable
from taskgate.metrics.probes import Liveness, create_probe_app, serve_probes
from taskgate.metrics.process import ProcessMetrics
from taskgate.pool.health import AccountHealth
from taskgate.scheduler.dispatcher import Dispatcher
from taskgate.settings import Settings
from taskgate.store.connection import create_redis, wait_for_redis
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts

log = structlog.get_logger(__name__)


async def dispatch_all(dispatcher: Dispatcher, batch: int, metrics: ProcessMetrics | None = None) -> int:
    """Dispatch until a round finds less than a full batch to do."""
    total = 0
    while True:
        started = time.perf_counter()
        done = len(await dispatcher.dispatch(batch))
        if metrics is not None:
            metrics.scheduler_calls.labels("dispatch").inc()
            metrics.scheduler_call_time.labels("dispatch").observe(time.perf_counter() - started)
            metrics.scheduler_dispatches.inc(done)
        total += done
        if done < batch:
            return total


async def sweep(dispatcher: Dispatcher, health: AccountHealth, metrics: ProcessMetrics) -> None:
    """The slow safety sweep: expired leases (the reaper), then account cooldowns and waits."""
    started = time.perf_counter()
    for _, status in await dispatcher.reap():
        metrics.reaper_recoveries.labels("retried" if status == "pending" else status).inc()
    metrics.scheduler_calls.labels("reap").inc()
    metrics.scheduler_call_time.labels("reap").observe(time.perf_counter() - started)
    started = time.perf_counter()
    await health.sweep()
    metrics.scheduler_calls.labels("sweep").inc()
    metrics.scheduler_call_time.labels("sweep").observe(time.perf_counter() - started)


async def run_scheduler(settings: Settings, stop: asyncio.Event, *, probes: bool = False) -> None:
    """Run until ``stop``; with ``probes`` serve /metrics, /healthz, /readyz on the scheduler probe port."""
    redis = await create_redis(settings, "scheduler", stop)
    keys = Keys(settings.key_prefix)
    scripts = Scripts.for_settings(redis, settings, Catalogue.load(settings.catalogue_path))  # B7 on failover
    dispatcher = Dispatcher(redis, scripts, keys, settings)
    health = AccountHealth(redis, scripts, keys, settings)
    metrics, liveness = ProcessMetrics("scheduler"), Liveness(settings.liveness_stale_s)
    probe_runner = None
    if probes and settings.scheduler_probe_port:
        probe_runner = await serve_probes(
            create_probe_app(metrics, liveness, redis), settings.probe_host, settings.scheduler_probe_port
        )
    log.info("scheduler_started", prefix=settings.key_prefix)
    next_sweep, last_round = 0.0, 0.0
    try:
        while not stop.is_set():
            liveness.beat()
            try:
                if time.monotonic() >= next_sweep:
                    await sweep(dispatcher, health, metrics)
                    next_sweep = time.monotonic() + settings.sweep_interval_s
                # while work keeps coming, rounds start at most every min interval: the slots freed
                # meanwhile are booked in one call instead of one call each (a dispatch call costs
                # Redis far more than one more task in it)
                rest = settings.dispatch_min_interval_ms / 1000 - (time.monotonic() - last_round)
                if rest > 0:
                    await _sleep_or_stop(stop, rest)
                last_round = time.monotonic()
                await dispatch_all(dispatcher, settings.dispatch_batch, metrics)
                await _wait_for_work(redis, keys, stop, settings.sweep_interval_s)
            except (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError, RedisUnavailable) as exc:
                log.warning("scheduler_redis_unavailable", error=exc.__class__.__name__)
                await wait_for_redis(redis, "scheduler", stop)
            except Exception:
                log.exception("scheduler_round_failed")
                await _sleep_or_stop(stop, 0.5)
    finally:
        if probe_runner is not None:
            await probe_runner.cleanup()
        await redis.aclose()
        log.info("scheduler_stopped")


async def _wait_for_work(redis: object, keys: Keys, stop: asyncio.Event, timeout_s: float) -> None:
    wait = asyncio.ensure_future(redis.blpop([keys.sched_wake()], timeout=timeout_s))  # type: ignore[attr-defined]
    stopped = asyncio.ensure_future(stop.wait())
    done, pending = await asyncio.wait({wait, stopped}, return_when=asyncio.FIRST_COMPLETED)
    for fut in pending:
        fut.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if wait in done:
        wait.result()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
