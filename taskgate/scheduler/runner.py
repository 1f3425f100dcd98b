"""The scheduler process: wake on new work or freed slots, dispatch, and sweep expired leases.

It blocks on a Redis list (BLPOP) that every enqueue and release pushes a token to, so a decision
follows new work within one round trip; the timeout is the slow safety sweep."""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from taskgate.catalogue import Catalogue
from taskgate.errors import RedisUnavailable
from taskgate.pool.health import AccountHealth
from taskgate.scheduler.dispatcher import Dispatcher
from taskgate.settings import Settings
from taskgate.store.connection import create_redis, wait_for_redis
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts

log = structlog.get_logger(__name__)


async def dispatch_all(dispatcher: Dispatcher, batch: int) -> int:
    """Dispatch until a round finds less than a full batch to do."""
    total = 0
    while True:
        done = len(await dispatcher.dispatch(batch))
        total += done
        if done < batch:
            return total


async def run_scheduler(settings: Settings, stop: asyncio.Event) -> None:
    redis = await create_redis(settings, "scheduler", stop)
    keys = Keys(settings.key_prefix)
    scripts = Scripts.for_settings(redis, settings, Catalogue.load(settings.catalogue_path))  # B7 on failover
    dispatcher = Dispatcher(redis, scripts, keys, settings)
    health = AccountHealth(redis, scripts, keys, settings)
    log.info("scheduler_started", prefix=settings.key_prefix)
    next_sweep = 0.0
    try:
        while not stop.is_set():
            try:
                if time.monotonic() >= next_sweep:
                    await dispatcher.reap()
                    await health.sweep()
                    next_sweep = time.monotonic() + settings.sweep_interval_s
                await dispatch_all(dispatcher, settings.dispatch_batch)
                await _wait_for_work(redis, keys, stop, settings.sweep_interval_s)
            except (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError, RedisUnavailable) as exc:
                log.warning("scheduler_redis_unavailable", error=exc.__class__.__name__)
                await wait_for_redis(redis, "scheduler", stop)
            except Exception:
                log.exception("scheduler_round_failed")
                await _sleep_or_stop(stop, 0.5)
    finally:
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
