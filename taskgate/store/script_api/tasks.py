"""Typed calls of the task scripts (tasks/lua): create, read, progress, finish, cancel, requeue."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from taskgate.store.keys import Keys
from taskgate.store.script_api.typed import flag, flat_dict, now_arg, typed
from taskgate.store.scripts import Scripts


@dataclass(frozen=True, slots=True)
class CreatedTask:
    task_id: str
    created: bool  # False: a duplicate (same Idempotency-Key, or a repeat of the same call)
    # what a created task's first read needs (zero/empty for a duplicate)
    created_ms: int = 0
    unit: str = ""
    frozen: int = 0
    running: int = 0  # the user's leased PPU slots
    flow_wait: str = ""  # the flow's wait reason, "" when none


@dataclass(frozen=True, slots=True)
class TaskRead:
    user: list[Any]  # the requested user fields' values, in order (None when unset)
    task: dict[str, str]
    running: int
    flow_wait: str


@dataclass(frozen=True, slots=True)
class FinishedAttempt:
    status: str  # the task's status afterwards: pending (retried, handed back), completed, failed
    task: dict[str, str]  # the task's fields the worker's metrics count, as settled ("" when unset)


@typed("cancel_task")
async def cancel_task(s: Scripts, k: Keys, *, now: int | None = None, task_id: str, user_id: str) -> str:
    """The task's status afterwards; NotFound("task") for an unknown task or another user's."""
    r = await s.call("cancel_task", keys=[k.task(task_id)], args=[k.base, now_arg(now), task_id, user_id])
    return str(r[1])


@typed("cancel_tasks")
async def cancel_tasks(
    s: Scripts, k: Keys, *, now: int | None = None, user_id: str, task_ids: Sequence[str]
) -> list[str]:
    """Each task's status afterwards, in order; all or nothing (NotFound("task") naming the first)."""
    r = await s.call("cancel_tasks", keys=[k.user(user_id)], args=[k.base, now_arg(now), user_id, *task_ids])
    return [str(x) for x in r[1:]]


@typed("create_task", key_args=("user_id", "idem_digest"))
async def create_task(
    s: Scripts,
    k: Keys,
    *,
    user_id: str,
    idem_digest: str,
    now: int | None = None,
    task_id: str,
    fields: Mapping[str, str],
    unit: str,
    price: int,
    relax: bool,
    flow_id: str,
    idem_ttl_ms: int,
    key_digest: str = "",
    user_stamp: str = "",
) -> CreatedTask:
    """``idem_digest``: the Idempotency-Key's digest ("-" and ``idem_ttl_ms`` 0 without one);
    ``key_digest`` (with ``user_stamp``): re-check the caller's API key and user in the script."""
    r = await s.call(
        "create_task",
        keys=[
            k.task(task_id),
            k.user(user_id),
            k.wallet(user_id),
            k.ledger(user_id),
            k.user_tasks(user_id),
            k.idempotency(user_id, idem_digest),
            k.flow(flow_id),
        ],
        args=[
            k.base,
            now_arg(now),
            task_id,
            json.dumps(fields),
            unit,
            price,
            flag(relax),
            flow_id,
            idem_ttl_ms,
            key_digest,
            user_stamp,
        ],
    )
    if int(r[2]) != 1:
        return CreatedTask(str(r[1]), False)
    _, task_id, _, created_ms, unit, frozen, running, flow_wait = r
    return CreatedTask(task_id, True, int(created_ms), unit or "", int(frozen), int(running), flow_wait or "")


@typed("read_task", key_args=("key_digest",))
async def read_task(s: Scripts, k: Keys, *, key_digest: str, task_id: str, fields: Sequence[str]) -> TaskRead:
    """A customer's read of one task with its API key checked in the same step."""
    r = await s.call(
        "read_task",
        keys=[k.api_key(key_digest), k.task(task_id), k.flow_wait()],
        args=[k.base, task_id, *fields],
    )
    return TaskRead(list(r[1]), flat_dict(r[2]), int(r[3]), r[4] or "")


@typed("finish_task")
async def finish_task(
    s: Scripts,
    k: Keys,
    *,
    now: int | None = None,
    task_id: str,
    attempt: int,
    outcome: str,
    output: Any = None,
    error: Any = None,
    max_attempts: int,
    blame: bool = False,
) -> FinishedAttempt:
    """The task's status afterwards and its settled fields (metrics/tasks.py FINISH_FIELDS).
    ``output`` / ``error`` are JSON-encoded (None: none)."""
    r = await s.call(
        "finish_task",
        keys=[k.task(task_id), k.task_failed_accounts(task_id)],
        args=[
            k.base,
            now_arg(now),
            task_id,
            attempt,
            outcome,
            "" if output is None else json.dumps(output),
            "" if error is None else json.dumps(error),
            max_attempts,
            flag(blame),
        ],
    )
    return FinishedAttempt(str(r[1]), flat_dict(r[2]))


@typed("record_progress")
async def record_progress(
    s: Scripts,
    k: Keys,
    *,
    now: int | None = None,
    task_id: str,
    attempt: int,
    upstream_id: str = "",
    progress: int | None = None,
    notify: bool = False,
) -> bool:
    """Whether the user asked to cancel. ``upstream_id`` "" / ``progress`` None leave them as they are."""
    r = await s.call(
        "record_progress",
        keys=[k.task(task_id)],
        args=[
            k.base,
            now_arg(now),
            task_id,
            attempt,
            upstream_id,
            "" if progress is None else progress,
            flag(notify),
        ],
    )
    return int(r[1]) == 1


@typed("redeliver_webhook")
async def redeliver_webhook(s: Scripts, k: Keys, *, now: int | None = None, task_id: str) -> str:
    """The new delivery's id."""
    r = await s.call("redeliver_webhook", keys=[k.task(task_id)], args=[k.base, now_arg(now), task_id])
    return str(r[1])


@typed("requeue_task")
async def requeue_task(s: Scripts, k: Keys, *, now: int | None = None, task_id: str) -> str:
    """The task's status before."""
    r = await s.call("requeue_task", keys=[k.task(task_id)], args=[k.base, now_arg(now), task_id])
    return str(r[1])
