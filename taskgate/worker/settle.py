"""How an attempt ends: each path is one fenced ``finish_task`` call (§8), shared by the submitting
job (``worker/execution.py``) and the watcher (``worker/watcher.py``). A second call for the same
attempt is refused by the script (stale attempt or already final), so settlement stays exactly once
even if two paths race.

Each path answers an ``Ended``: the task's status afterwards with the fields the metrics count, as
``finish_task`` returned them (so observing an attempt costs no read of the task).

S9: a completed run ends its account's cooldown streak inside ``finish_task``; an upstream error is
reported to the account's health before the finish."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from taskgate.models import Outcome
from taskgate.pool.health import AccountHealth
from taskgate.providers.base import (
    AccountAccess,
    ErrorKind,
    Provider,
    ProviderError,
    UpstreamState,
    UpstreamStatus,
)
from taskgate.store.script_api import FinishedAttempt
from taskgate.tasks.record import TaskRecord
from taskgate.tasks.service import TaskService

log = structlog.get_logger(__name__)


class UserCancelled(Exception):
    """The user asked to cancel the running task."""


@dataclass(slots=True)
class Attempt:
    task: TaskRecord
    access: AccountAccess
    provider: Provider


# How an attempt ended: finish_task's answer (the task's status afterwards and the settled fields
# metrics/tasks.py counts), plus two statuses of the worker's own with no fields: ``stale`` (fenced
# off, it changed nothing) and ``watched`` (the watcher holds it).
Ended = FinishedAttempt
STALE = Ended("stale", {})


class Settler:
    def __init__(self, tasks: TaskService, health: AccountHealth) -> None:
        self.tasks, self.health = tasks, health

    async def ended(self, run: Attempt, status: UpstreamStatus) -> Ended:
        """The upstream job ended (completed: finish_task also ends the account's cooldown streak)."""
        task = run.task
        if status.state == UpstreamState.COMPLETED:
            return await self.tasks.finish(
                task.task_id, task.attempt, Outcome.COMPLETED, output=status.output or {}
            )
        return await self.error(run, status.error or ProviderError(ErrorKind.TRANSIENT, "upstream failed"))

    async def error(self, run: Attempt, exc: ProviderError) -> Ended:
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
            # S9: let the account's health decide (cooldown, captcha, ban, quota, relax only)
            await self.health.report(run.access.account_id, exc.kind, exc.retry_after_s, reason=str(exc))
            outcome = Outcome.RETRY
        return await self.tasks.finish(
            task.task_id, task.attempt, outcome, error=err, blame_account=outcome == Outcome.RETRY
        )

    async def cancelled(self, run: Attempt) -> Ended:
        """The user cancelled: cancel the upstream job (if submitted), then finish CANCELLED."""
        task = run.task
        if task.upstream_id:
            try:
                await run.provider.cancel(run.access, task.upstream_id)
            except ProviderError as exc:
                log.warning("upstream_cancel_failed", task_id=task.task_id, error=str(exc))
        error = _error(499, "cancelled", "cancelled by the user")
        return await self.tasks.finish(task.task_id, task.attempt, Outcome.CANCELLED, error=error)

    async def hand_back(self, task_id: str, attempt: int) -> Ended:
        """A stopping worker returns the attempt; the next one resumes by the stored upstream id."""
        try:
            finished = await self.tasks.finish(task_id, attempt, Outcome.HANDBACK)
            log.info("attempt_handed_back", task_id=task_id, attempt=attempt)
            return finished
        except Exception:
            log.exception("hand_back_failed", task_id=task_id, attempt=attempt)
            return STALE


def _error(code: int, message: str, raw: str) -> dict[str, Any]:
    return {"code": code, "message": message, "raw_message": raw, "detail": None}


def _error_code(kind: ErrorKind) -> int:
    return {ErrorKind.INCORRECT: 400, ErrorKind.RATE_LIMITED: 429, ErrorKind.QUOTA: 402}.get(kind, 500)
