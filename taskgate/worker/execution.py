"""Running one dispatched attempt against its account's upstream provider.

Order of effects (§8): the upstream id is stored before polling, so a lost attempt is resumed by
that id (never submitted twice); the lease is renewed while the job runs; every write is fenced by
the attempt number; the task is finished exactly once by ``finish_task``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import structlog

from taskgate import callbacks
from taskgate.errors import StaleAttempt
from taskgate.models import Outcome, TaskStatus
from taskgate.pool.health import AccountHealth
from taskgate.pool.registry import AccountRegistry
from taskgate.providers.base import (
    AccountAccess,
    ErrorKind,
    Provider,
    ProviderError,
    UpstreamRequest,
    UpstreamState,
    UpstreamStatus,
)
from taskgate.settings import Settings
from taskgate.tasks.record import TaskRecord
from taskgate.tasks.service import TaskService
from taskgate.worker.callbacks import CallbackHub
from taskgate.worker.leases import LeaseKeeper
from taskgate.worker.polling import Polling

log = structlog.get_logger(__name__)

TRANSIENT_POLL_ERRORS = 5
ACCESS_CACHE_S = 5.0  # consecutive poll failures before the attempt is given up


class UserCancelled(Exception):
    """The user asked to cancel the running task."""


@dataclass(slots=True)
class Attempt:
    task: TaskRecord
    access: AccountAccess
    provider: Provider


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
        self._access_cache: dict[str, tuple[float, AccountAccess]] = {}

    async def run(self, task_id: str, attempt: int) -> str:
        task = await self.tasks.load(task_id)
        if task is None or task.status != TaskStatus.PROCESSING or task.attempt != attempt:
            log.info("attempt_stale_skipped", task_id=task_id, attempt=attempt)
            return "stale"
        access = await self._access(task.account_id)
        run = Attempt(task, access, self.providers[access.provider])
        lease = self.leases.hold(task_id, attempt)
        try:
            return await self._drive(run, lease.cancelled)
        except StaleAttempt:
            log.warning("attempt_fenced_off", task_id=task_id, attempt=attempt)
            return "stale"
        except asyncio.CancelledError:
            await asyncio.shield(self._hand_back(task_id, attempt))
            raise
        finally:
            self.leases.release(lease)
            self.polling.forget(task_id, attempt)

    async def _access(self, account_id: str) -> AccountAccess:
        """Credentials, cached briefly: they change rarely and are read for every attempt."""
        now = asyncio.get_running_loop().time()
        cached = self._access_cache.get(account_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        access = await self.accounts.access(account_id)
        self._access_cache[account_id] = (now + ACCESS_CACHE_S, access)
        return access

    async def _drive(self, run: Attempt, cancelled: asyncio.Event) -> str:
        task = run.task
        try:
            resumed = bool(task.upstream_id)
            upstream_id = task.upstream_id or await self._submit(run)
            status = await self._poll_until_done(run, upstream_id, cancelled, resumed)
        except UserCancelled:
            if task.upstream_id or run.task.upstream_id:
                await self._cancel_upstream(run)
            return str(
                await self.tasks.finish(
                    task.task_id,
                    task.attempt,
                    Outcome.CANCELLED,
                    error=_error(499, "cancelled", "cancelled by the user"),
                )
            )
        except ProviderError as exc:
            return await self._finish_error(run, exc)
        if status.state == UpstreamState.COMPLETED:
            finished = await self.tasks.finish(
                task.task_id, task.attempt, Outcome.COMPLETED, output=status.output or {}
            )
            await self.health.report(run.access.account_id, None)  # S9: the cooldown streak ends
            return str(finished)
        return await self._finish_error(
            run, status.error or ProviderError(ErrorKind.TRANSIENT, "upstream failed")
        )

    async def _submit(self, run: Attempt) -> str:
        task, provider = run.task, run.access.provider
        callback_url = await self.polling.expect_callback(provider, task.task_id, task.attempt)
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
        run.task.upstream_id = upstream_id
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

    async def _poll_until_done(
        self, run: Attempt, upstream_id: str, cancelled: asyncio.Event, resumed: bool
    ) -> UpstreamStatus:
        t = run.task
        schedule = self.polling.schedule(run.access.provider, t.model, t.lane, t.task_id, t.attempt)
        delay, failures, last_progress = schedule.first_delay(resumed), 0, -1
        while True:
            await self.polling.wait(run.access.account_id, delay, cancelled, schedule.woken)
            if cancelled.is_set():
                raise UserCancelled
            try:
                status = await run.provider.poll(run.access, upstream_id)
                failures = 0
            except ProviderError as exc:
                failures += 1
                if exc.kind != ErrorKind.TRANSIENT or failures >= TRANSIENT_POLL_ERRORS:
                    raise
                status = UpstreamStatus(state=UpstreamState.RUNNING, progress=max(last_progress, 0))
            if status.state in (UpstreamState.COMPLETED, UpstreamState.FAILED):
                return status
            if status.progress > last_progress:
                last_progress = status.progress
                if await self.tasks.record_progress(
                    run.task.task_id, run.task.attempt, progress=status.progress, notify=True
                ):
                    raise UserCancelled
            delay = schedule.next_delay(asyncio.get_running_loop().time())

    async def _finish_error(self, run: Attempt, exc: ProviderError) -> str:
        task = run.task
        err = _error(_error_code(exc.kind), str(exc), exc.raw or str(exc))
        log.warning(
            "upstream_error",
            task_id=task.task_id,
            attempt=task.attempt,
            kind=str(exc.kind),
            account_id=run.access.account_id,
        )
        if exc.kind == ErrorKind.INCORRECT:
            outcome = Outcome.INCORRECT
        else:
            await self._account_problem(run.access.account_id, exc)
            outcome = Outcome.RETRY
        return str(
            await self.tasks.finish(
                task.task_id, task.attempt, outcome, error=err, blame_account=outcome == Outcome.RETRY
            )
        )

    async def _account_problem(self, account_id: str, exc: ProviderError) -> None:
        """S9: let the account's health decide (cooldown, captcha, ban, quota, relax only)."""
        await self.health.report(account_id, exc.kind, exc.retry_after_s, reason=str(exc))

    async def _cancel_upstream(self, run: Attempt) -> None:
        try:
            await run.provider.cancel(run.access, run.task.upstream_id)
        except ProviderError as exc:
            log.warning("upstream_cancel_failed", task_id=run.task.task_id, error=str(exc))

    async def _hand_back(self, task_id: str, attempt: int) -> None:
        try:
            await self.tasks.finish(task_id, attempt, Outcome.HANDBACK)
            log.info("attempt_handed_back", task_id=task_id, attempt=attempt)
        except Exception:
            log.exception("hand_back_failed", task_id=task_id, attempt=attempt)


def _error(code: int, message: str, raw: str) -> dict[str, Any]:
    return {"code": code, "message": message, "raw_message": raw, "detail": None}


def _error_code(kind: ErrorKind) -> int:
    return {ErrorKind.INCORRECT: 400, ErrorKind.RATE_LIMITED: 429, ErrorKind.QUOTA: 402}.get(kind, 500)
