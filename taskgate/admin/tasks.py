"""Operator tools over any task (admin API, ``taskgate admin tasks``, the dashboard): list with
filters, show everything about one task, cancel, retry a failed one, requeue a stuck one, redeliver
its webhook. Changes go through Lua scripts; listing reads the per-user task indexes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import structlog

from taskgate.errors import Conflict, InvalidInput, NotFound
from taskgate.models import CreateTaskRequest, TaskStatus, ms_to_rfc3339
from taskgate.services import Services
from taskgate.store import script_api
from taskgate.tasks.record import TaskRecord

log = structlog.get_logger(__name__)

SUMMARY_FIELDS = (
    "id",
    "user",
    "model",
    "task_type",
    "lane",
    "pool",
    "status",
    "account",
    "attempt",
    "created_ms",
    "started_ms",
    "ended_ms",
    "error",
    "outcome",
    "unit",
    "frozen",
    "consume",
)
LIST_LIMIT_MAX = 500
LEDGER_SCAN = 2000  # most recent ledger entries of the user searched for a task's movements
CHUNK = 200
TASK_ID = re.compile(r"^[0-9A-Fa-f-]{1,64}$")  # task ids are UUIDs; anything else never reaches a key


def checked_id(task_id: str) -> str:
    if not TASK_ID.match(task_id):
        raise NotFound("task", task_id[:64])
    return task_id


@dataclass(frozen=True, slots=True)
class TaskFilter:
    status: str | None = None
    user_id: str | None = None
    account_id: str | None = None
    min_age_s: float = 0.0  # at least this old
    max_age_s: float | None = None  # at most this old
    limit: int = 50

    def check(self) -> None:
        if self.status is not None and self.status not in {str(s) for s in TaskStatus}:
            raise InvalidInput("status", f"one of {', '.join(str(s) for s in TaskStatus)}")
        if not 1 <= self.limit <= LIST_LIMIT_MAX:
            raise InvalidInput("limit", f"between 1 and {LIST_LIMIT_MAX}")
        if self.min_age_s < 0 or (self.max_age_s is not None and self.max_age_s < self.min_age_s):
            raise InvalidInput("max_age_s", "ages must be >= 0 and max_age_s >= min_age_s")

    def matches(self, t: dict[str, str]) -> bool:
        if self.status is not None and _status(t) != self.status:
            return False
        return self.account_id is None or t.get("account") == self.account_id


def _status(t: dict[str, str]) -> str:
    return t.get("status", "")


def summary(t: dict[str, str], now_ms: int) -> dict[str, Any]:
    created = int(t.get("created_ms") or 0)
    error = json.loads(t["error"]) if t.get("error") else {}
    return {
        "task_id": t["id"],
        "user_id": t.get("user", ""),
        "model": t.get("model", ""),
        "task_type": t.get("task_type", ""),
        "lane": t.get("lane", ""),
        "pool": t.get("pool", ""),
        "status": _status(t),
        "outcome": t.get("outcome", ""),
        "account_id": t.get("account", ""),
        "attempt": int(t.get("attempt") or 0),
        "created_at": ms_to_rfc3339(created),
        "started_at": ms_to_rfc3339(int(t.get("started_ms") or 0)),
        "ended_at": ms_to_rfc3339(int(t.get("ended_ms") or 0)),
        "age_s": round(max(0, now_ms - created) / 1000, 3),
        "error": error.get("message", ""),
        "unit": t.get("unit", ""),
        "frozen": int(t.get("frozen") or 0),
        "consume": int(t.get("consume") or 0),
    }


class TaskAdmin:
    def __init__(self, services: Services) -> None:
        self.s = services

    async def _now_ms(self) -> int:
        sec, usec = await self.s.redis.time()
        return int(sec) * 1000 + int(usec) // 1000

    async def _raw(self, task_id: str) -> dict[str, str]:
        raw = await self.s.redis.hgetall(self.s.keys.task(checked_id(task_id)))
        if not raw:
            raise NotFound("task", task_id)
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def list(self, f: TaskFilter) -> list[dict[str, Any]]:
        """Newest first. Reads each user's task index within the age window, then the candidates."""
        f.check()
        r, k = self.s.redis, self.s.keys
        now = await self._now_ms()
        users = [f.user_id] if f.user_id else sorted(m.decode() for m in await r.smembers(k.users()))
        newest = now - int(f.min_age_s * 1000)
        oldest: float | str = now - int(f.max_age_s * 1000) if f.max_age_s is not None else "-inf"
        pipe = r.pipeline(transaction=False)
        for user in users:
            pipe.zrevrangebyscore(k.user_tasks(user), newest, oldest, withscores=True)
        candidates = sorted(
            ((score, member.decode()) for rows in await pipe.execute() for member, score in rows),
            reverse=True,
        )
        out: list[dict[str, Any]] = []
        for i in range(0, len(candidates), CHUNK):
            pipe = r.pipeline(transaction=False)
            for _, task_id in candidates[i : i + CHUNK]:
                pipe.hmget(k.task(task_id), list(SUMMARY_FIELDS))
            for values in await pipe.execute():
                t = {n: v.decode() for n, v in zip(SUMMARY_FIELDS, values, strict=True) if v is not None}
                if t.get("id") and f.matches(t):
                    out.append(summary(t, now))
                    if len(out) >= f.limit:
                        return out
        return out

    async def show(self, task_id: str) -> dict[str, Any]:
        """Everything about one task: its §4 object, where it ran, failed accounts, ledger, webhooks."""
        raw = await self._raw(task_id)
        r, k = self.s.redis, self.s.keys
        record = TaskRecord.from_hash(raw)
        failed = sorted(m.decode() for m in await r.smembers(k.task_failed_accounts(task_id)))
        ledger = []
        for entry_id, fields in await r.xrevrange(k.ledger(record.user_id), count=LEDGER_SCAN):
            entry = {a.decode(): b.decode() for a, b in fields.items()}
            if entry.get("task") == task_id:
                ledger.append({"id": entry_id.decode(), **entry})
        webhooks = [json.loads(x) for x in await r.lrange(k.webhook_attempts(task_id), 0, -1)]
        now = await self._now_ms()
        return {
            "summary": summary(raw, now),
            "task": await self.s.tasks.view(record),
            "attempts": {
                "count": record.attempt,
                "account_id": record.account_id or None,
                "failed_accounts": failed,
                "upstream_id": record.upstream_id or None,
                "dispatched_at": ms_to_rfc3339(int(raw.get("dispatched_ms") or 0)),
                "failover": raw.get("failover") == "1",
                "cancel_requested": record.cancel_requested,
            },
            "ledger": list(reversed(ledger)),
            "webhook": {"endpoint": raw.get("webhook_endpoint", ""), "attempts": webhooks},
        }

    async def cancel(self, task_id: str) -> dict[str, Any]:
        raw = await self._raw(task_id)
        k = self.s.keys
        await script_api.cancel_task(self.s.scripts, k, task_id=task_id, user_id=raw["user"])
        log.info("task_cancelled_by_operator", task_id=task_id)
        return await self.show(task_id)

    async def retry(self, task_id: str) -> dict[str, Any]:
        """A failed task runs again as a new task (same user, model, input, config), priced,
        frozen and charged like any new one; both tasks record the link."""
        raw = await self._raw(task_id)
        if raw["status"] != TaskStatus.FAILED:
            raise Conflict(f"only a failed task can be retried; this one is {raw['status']}")
        user = await self.s.users.get(raw["user"])
        req = CreateTaskRequest(
            model=raw["model"],
            task_type=raw["task_type"],
            input=json.loads(raw.get("input") or "{}"),
            config=json.loads(raw.get("config") or "{}"),
        )
        created = await self.s.tasks.create(user, req)
        new_id = created["task_id"]
        pipe = self.s.redis.pipeline(transaction=True)
        pipe.hset(self.s.keys.task(new_id), "retry_of", task_id)
        pipe.hset(self.s.keys.task(task_id), "retried_as", new_id)
        await pipe.execute()
        log.info("task_retried_by_operator", task_id=task_id, new_task_id=new_id)
        return {"retry_of": task_id, "task": created}

    async def requeue(self, task_id: str) -> dict[str, Any]:
        k, task_id = self.s.keys, checked_id(task_id)
        was = await script_api.requeue_task(self.s.scripts, k, task_id=task_id)
        log.info("task_requeued_by_operator", task_id=task_id, was=was)
        return {"task_id": task_id, "was": was, **(await self.show(task_id))}

    async def redeliver(self, task_id: str) -> dict[str, Any]:
        k, task_id = self.s.keys, checked_id(task_id)
        delivery_id = await script_api.redeliver_webhook(self.s.scripts, k, task_id=task_id)
        log.info("webhook_redelivery_queued", task_id=task_id, delivery=delivery_id)
        return {"task_id": task_id, "delivery_id": delivery_id}
