"""The arq job's part of one dispatched attempt: submit upstream (or resume), then hand it over.

Order of effects (§8): the attempt is held by the watcher (lease renewed, callbacks routed) before
it submits; the upstream id is stored before any poll, so a lost attempt is resumed by that id
(never submitted twice); every write is fenced by the attempt number; the task is finished exactly
once by ``finish_task``. Once the upstream id is stored the job returns and its arq slot is free:
the waiting is the watcher's (worker/watcher.py), which polls and settles."""

from __future__ import annotations

import asyncio

import structlog

from taskgate.errors import StaleAttempt
from taskgate.models import TaskStatus
from taskgate.pool.health import AccountHealth
from taskgate.pool.registry import AccountRegistry
from taskgate.providers import callbacks
from taskgate.providers.base import AccountAccess, Provider, ProviderError, UpstreamRequest
from taskgate.settings import Settings
from taskgate.tasks.record import TaskRecord
from taskgate.tasks.service import TaskService
from taskgate.worker.callbacks import CallbackHub
from taskgate.worker.leases import LeaseKeeper
from taskgate.worker.polling import Polling
from taskgate.worker.settle import STALE, Attempt, Ended, Settler, UserCancelled
from taskgate.worker.watcher import Watched, Watcher

log = structlog.get_logger(__name__)

ACCESS_CACHE_S = 5.0
WATCHED = Ended("watched", {})  # the job's result once the watcher holds the attempt


class TaskRunner:
    def __init__(
        self,
        tasks: TaskService,
        accounts: AccountRegistry,
        providers: dict[str, Provider],
        settings: Settings,
        health: AccountHealth,
    ) -> None:
        self.tasks, self.accounts, self.providers, self.settings = tasks, accounts, providers, settings
        self.health = health
        self.leases = LeaseKeeper(tasks.scripts, tasks.keys, settings)  # batched renewal
        hub = CallbackHub(tasks.redis, tasks.keys)  # upstream callbacks, when configured
        self.polling = Polling(settings, hub=hub)  # adaptive poll intervals, per-account poll cap
        self.settler = Settler(tasks, health)
        self.watcher = Watcher(
            tasks,
            self.settler,
            self.polling,
            self.leases,
            settings.worker_max_inflight,
            settings.worker_watch_concurrency,
        )
        self._access_cache: dict[str, tuple[float, AccountAccess]] = {}

    async def run(self, task_id: str, attempt: int, *, task_hash: dict[str, str] | None = None) -> Ended:
        """Submit (or resume) and hand over to the watcher: ``watched``; or how the attempt ended
        if it ended here (submit refused, cancelled, stale, or handed back: the watcher is full).
        ``task_hash``: the task hash already read with the job's claim (empty: the task is gone);
        None: it is read here."""
        task = await self._load(task_id, task_hash)
        if task is None or task.status != TaskStatus.PROCESSING or task.attempt != attempt:
            log.info("attempt_stale_skipped", task_id=task_id, attempt=attempt)
            return STALE
        access = await self._access(task.account_id)
        run = Attempt(task, access, self.providers[access.provider])
        lease = self.leases.hold(task_id, attempt)
        w = self.watcher.admit(run, lease)
        if w is None:  # the watcher is full (or closing): another worker takes it
            self.leases.release(lease)
            log.warning("watcher_full_handing_back", task_id=task_id, attempt=attempt)
            return await asyncio.shield(self.settler.hand_back(task_id, attempt))
        try:
            return await self._start(w)
        except StaleAttempt:
            log.warning("attempt_fenced_off", task_id=task_id, attempt=attempt)
            self.watcher.drop(w)
            return STALE
        except asyncio.CancelledError:
            self.watcher.drop(w)
            await asyncio.shield(self.settler.hand_back(task_id, attempt))
            raise
        except BaseException:
            self.watcher.drop(w)  # not renewed any more: the lease expires and the reaper requeues
            raise

    async def _load(self, task_id: str, task_hash: dict[str, str] | None) -> TaskRecord | None:
        if task_hash is None:
            return await self.tasks.load(task_id)
        return TaskRecord.from_hash(task_hash) if task_hash else None

    async def _start(self, w: Watched) -> Ended:
        run = w.run
        resumed = bool(run.task.upstream_id)
        try:
            if not resumed:
                await self._submit(w)
        except UserCancelled:
            result = await self.settler.cancelled(run)
        except ProviderError as exc:
            result = await self.settler.error(run, exc)
        else:
            self.watcher.watch(w, resumed)
            return WATCHED
        self.watcher.drop(w)
        return result

    async def _access(self, account_id: str) -> AccountAccess:
        """Credentials, cached briefly: they change rarely and are read for every attempt."""
        now = asyncio.get_running_loop().time()
        cached = self._access_cache.get(account_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        access = await self.accounts.access(account_id)
        self._access_cache[account_id] = (now + ACCESS_CACHE_S, access)
        return access

    async def _submit(self, w: Watched) -> str:
        run, task = w.run, w.run.task
        callback_url = await self.watcher.expect_callback(w)
        provider = run.access.provider
        request = UpstreamRequest(
            model=task.model,
            task_type=task.task_type,
            mode=task.lane,
            input=task.input,
            idempotency_key=task.job_key or task.task_id,  # set by dispatch (see dispatch_tasks.lua)
            callback_url=callback_url,
            callback_secret=callback_url
            and callbacks.callback_secret(self.settings, task.task_id, task.attempt, provider),
        )
        upstream_id = await run.provider.submit(run.access, request)
        task.upstream_id = upstream_id
        if await self.tasks.record_progress(task.task_id, task.attempt, upstream_id=upstream_id, progress=0):
            raise UserCancelled
        log.info(
            "upstream_submitted",
            task_id=task.task_id,
            attempt=task.attempt,
            upstream_id=upstream_id,
            account_id=run.access.account_id,
        )
        return upstream_id
