"""Shared wire models (pydantic v2) and the enums every layer uses."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, NewType

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

UserId = NewType("UserId", str)
TaskId = NewType("TaskId", str)
AccountId = NewType("AccountId", str)


class TaskStatus(StrEnum):
    STAGED = "staged"  # derived on read: pending, held back only by the user's own cap
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


TERMINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED})


class Lane(StrEnum):
    """Priority lanes, highest first. Models without modes run in the fast lane."""

    TURBO = "turbo"
    FAST = "fast"
    RELAX = "relax"


LANES_BY_PRIORITY = (Lane.TURBO, Lane.FAST, Lane.RELAX)


class Pool(StrEnum):
    PPU = "ppu"  # shared pay-per-use accounts; priced and capped by plan
    BYOA = "byoa"  # the user's own accounts; free, bounded by their capacity


class ServiceMode(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    DEFAULT = ""


class Plan(StrEnum):
    FREE = "free"
    DEVELOPER = "developer"
    PREMIUM = "premium"
    ENTERPRISE = "enterprise"


class AccountState(StrEnum):
    ACTIVE = "active"
    COOLING_DOWN = "cooling_down"
    NEEDS_CAPTCHA = "needs_captcha"
    DISABLED = "disabled"  # by an operator (paused); never comes back on its own
    AUTO_DISABLED = "auto_disabled"  # by health checks; a passing probe brings it back
    BANNED = "banned"


class WaitReason(StrEnum):
    """Why a pending task waits (S10); shown as the task's ``detail`` while it waits."""

    QUEUED = "queued"  # its flow is ready: the next dispatch round looks at it
    WAITING_FOR_CAPACITY = "waiting_for_capacity"  # an account it may use is busy
    USER_CAP_REACHED = "user_cap_reached"  # the user's plan concurrency is in use (S1)
    NO_ACCOUNT = "no_account_serves_model_mode"  # fails after TASKGATE_PENDING_MAX_WAIT_MS
    COOLING_DOWN = "all_accounts_cooling_down"  # it runs when a cooldown ends
    ONLY_EXCLUDED = "only_excluded_accounts_left"  # only accounts it failed on: back to one when usable


class Outcome(StrEnum):
    """How an upstream run ended, as the worker reports it to ``finish_task``."""

    COMPLETED = "completed"
    FAILED = "failed"  # refund
    INCORRECT = "incorrect"  # counts toward B6; refund unless past the paid plans' limit
    RETRY = "retry"  # account problem or lost lease: try another account, no new charge
    CANCELLED = "cancelled"
    HANDBACK = "handback"  # a stopping worker returns the attempt; it resumes by upstream id elsewhere


def _null_is_absent(value: Any) -> Any:
    """GoAPI clients send ``null`` for "not set" (``"config": null``, ``"endpoint": null``)."""
    return {} if value is None else value


def _null_is_empty(value: Any) -> Any:
    return "" if value is None else value


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint: Annotated[str, BeforeValidator(_null_is_empty)] = ""
    secret: Annotated[str, BeforeValidator(_null_is_empty)] = ""


class TaskConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    service_mode: Annotated[ServiceMode, BeforeValidator(_null_is_empty)] = ServiceMode.DEFAULT
    webhook_config: Annotated[WebhookConfig, BeforeValidator(_null_is_absent)] = Field(
        default_factory=WebhookConfig
    )


class CreateTaskRequest(BaseModel):
    """Body of ``POST /api/v1/task``. ``input`` is validated per task type by the catalogue."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1, max_length=100)
    task_type: str = Field(min_length=1, max_length=100)
    input: dict[str, Any]
    config: Annotated[TaskConfig, BeforeValidator(_null_is_absent)] = Field(default_factory=TaskConfig)


def ms_to_rfc3339(ms: int | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def now_ms() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1000)
