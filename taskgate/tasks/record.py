"""A task as stored in Redis (one hash) and its §4 wire form."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from taskgate.models import Pool, TaskStatus, ms_to_rfc3339


def _int(raw: dict[str, str], name: str) -> int:
    value = raw.get(name, "")
    return int(value) if value not in ("", None) else 0


def _json(raw: dict[str, str], name: str, default: Any) -> Any:
    value = raw.get(name)
    return json.loads(value) if value else default


@dataclass(slots=True)
class TaskRecord:
    task_id: str
    user_id: str
    model: str
    task_type: str
    lane: str
    pool: Pool
    status: TaskStatus
    attempt: int
    input: dict[str, Any]
    config: dict[str, Any]
    created_ms: int
    started_ms: int = 0
    ended_ms: int = 0
    account_id: str = ""
    upstream_id: str = ""
    bot_id: str = ""
    output: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    progress: int = 0
    unit: str = ""
    frozen: int = 0
    consume: int = 0
    settled: bool = False
    cancel_requested: bool = False
    flow: str = ""
    job_key: str = ""  # the upstream idempotency key of this attempt ("" = the task id)
    wait_reason: str = ""  # S10: why a pending task waits (set aside: its own; else its flow's)
    logs: list[Any] = field(default_factory=list)

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> TaskRecord:
        return cls(
            task_id=raw["id"],
            user_id=raw["user"],
            model=raw["model"],
            task_type=raw["task_type"],
            lane=raw["lane"],
            pool=Pool(raw["pool"]),
            status=TaskStatus(raw["status"]),
            attempt=_int(raw, "attempt"),
            input=_json(raw, "input", {}),
            config=_json(raw, "config", {}),
            created_ms=_int(raw, "created_ms"),
            started_ms=_int(raw, "started_ms"),
            ended_ms=_int(raw, "ended_ms"),
            account_id=raw.get("account", ""),
            upstream_id=raw.get("upstream_id", ""),
            bot_id=raw.get("bot_id", ""),
            output=_json(raw, "output", None),
            error=_json(raw, "error", None),
            progress=_int(raw, "progress"),
            unit=raw.get("unit", ""),
            frozen=_int(raw, "frozen"),
            consume=_int(raw, "consume"),
            settled=raw.get("settled") == "1",
            cancel_requested=raw.get("cancel") == "1",
            flow=raw.get("flow", ""),
            job_key=raw.get("job_key", ""),
            wait_reason=raw.get("wait", "") if raw.get("aside") == "1" else "",
        )

    def to_api(self, *, staged: bool = False, show_progress: bool = True) -> dict[str, Any]:
        """The §4 task object (``data`` of GET /api/v1/task/{id})."""
        status = TaskStatus.STAGED if staged and self.status == TaskStatus.PENDING else self.status
        output: dict[str, Any] | None = dict(self.output) if self.output is not None else None
        if show_progress:
            progress = 100 if self.status == TaskStatus.COMPLETED else self.progress
            output = {**(output or {}), "progress": progress}
        error = self.error or {}
        waiting = self.wait_reason if self.status == TaskStatus.PENDING else None
        return {
            "task_id": self.task_id,
            "model": self.model,
            "task_type": self.task_type,
            "status": str(status),
            "config": self.config,
            "input": self.input,
            "output": output,
            "meta": {
                "created_at": ms_to_rfc3339(self.created_ms),
                "started_at": ms_to_rfc3339(self.started_ms),
                "ended_at": ms_to_rfc3339(self.ended_ms),
                "usage": {"type": self.unit or "point", "frozen": self.frozen, "consume": self.consume},
                "is_using_private_pool": self.pool == Pool.BYOA,
                "account_id": self.account_id or None,
                "attempt": self.attempt,
                "wait_reason": waiting or None,
            },
            "detail": waiting or None,  # GoAPI clients ignore it; while pending: the wait reason
            "logs": self.logs,
            "error": {
                "code": int(error.get("code", 0)),
                "raw_message": error.get("raw_message", ""),
                "message": error.get("message", ""),
                "detail": error.get("detail"),
            },
        }
