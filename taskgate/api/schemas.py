"""Pydantic models of the responses, for the OpenAPI document (requests are validated by the
models the handlers already parse). Every response is the §4 envelope around ``data``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Envelope(BaseModel):
    """Every response: ``code`` repeats the HTTP status; errors carry ``data: null``."""

    code: int = Field(examples=[200])
    data: Any = None
    message: str = Field(examples=["success"])
    detail: Any = None


class TaskUsage(BaseModel):
    type: str = Field(description="wallet unit of the price (point for free BYOA tasks)")
    frozen: int
    consume: int


class TaskMeta(BaseModel):
    created_at: str | None = Field(description="RFC 3339 UTC")
    started_at: str | None
    ended_at: str | None
    usage: TaskUsage
    is_using_private_pool: bool
    account_id: str | None
    attempt: int


class TaskError(BaseModel):
    code: int = Field(description="0 when there is no error")
    raw_message: str
    message: str
    detail: Any = None


class TaskObject(BaseModel):
    """The §4 task object (``data`` of create, get and cancel)."""

    task_id: str
    model: str
    task_type: str
    status: str = Field(description="staged, pending, processing, completed or failed")
    config: dict[str, Any]
    input: dict[str, Any]
    output: dict[str, Any] | None
    meta: TaskMeta
    detail: Any = None
    logs: list[Any]
    error: TaskError


class TaskPage(BaseModel):
    tasks: list[TaskObject]
    total: int
    page: int
    size: int


class TaskSummary(BaseModel):
    """One row of the admin task list."""

    task_id: str
    user_id: str
    model: str
    task_type: str
    lane: str
    pool: str
    status: str
    outcome: str
    account_id: str
    attempt: int
    created_at: str | None
    started_at: str | None
    ended_at: str | None
    age_s: float
    error: str
    unit: str
    frozen: int
    consume: int


class TaskAttempts(BaseModel):
    count: int
    account_id: str | None
    failed_accounts: list[str]
    upstream_id: str | None
    dispatched_at: str | None
    failover: bool
    cancel_requested: bool


class TaskWebhooks(BaseModel):
    endpoint: str
    attempts: list[dict[str, Any]]


class TaskDetail(BaseModel):
    """Everything about one task (admin)."""

    summary: TaskSummary
    task: TaskObject
    attempts: TaskAttempts
    ledger: list[dict[str, str]] = Field(description="the task's wallet movements, oldest first")
    webhook: TaskWebhooks


class RetryResult(BaseModel):
    retry_of: str
    task: TaskObject


class Redelivery(BaseModel):
    task_id: str
    delivery_id: str


class Overview(BaseModel):
    """The operator overview the dashboard renders."""

    now_ms: int
    lanes: dict[str, dict[str, float]]
    pending: list[dict[str, Any]]
    running: list[dict[str, Any]]
    accounts: list[dict[str, Any]]
    frozen: dict[str, int]
    webhook_backlog: int
    webhook_oldest_age_s: float
    plans: list[dict[str, Any]]
    recent_failed: list[TaskSummary]
    credits_flow: dict[str, Any]


class Probe(BaseModel):
    status: str
