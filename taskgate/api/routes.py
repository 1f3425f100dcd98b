"""The customer API (DESIGN.md §4): tasks and account, authenticated by ``x-api-key``.

Handlers are thin: authenticate, parse the body into a pydantic model, call a service, wrap the
result in the envelope. Every refusal is a ``TaskgateError`` that the middleware renders."""

from __future__ import annotations

import re

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from taskgate.api.auth import APP_SETTINGS, KEY_CACHE, api_key_of, cached_user, current_user
from taskgate.api.requests import check_task_input, header_text, int_param, json_body, parse
from taskgate.api.state import SERVICES
from taskgate.errors import NotFound, Unauthorized, UserChanged
from taskgate.models import CreateTaskRequest
from taskgate.users.service import key_digest
from taskgate.web.envelope import ok

routes = web.RouteTableDef()
MAX_BATCH_CANCEL = 100
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX = 255
DEFAULT_PAGE_SIZE = 20
# Task ids are UUIDs; anything else is unknown without a Redis round trip (and never reaches a key).
TASK_ID = re.compile(r"^[0-9A-Fa-f-]{1,64}$")


class CancelBatch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    task_ids: list[str] = Field(min_length=1, max_length=MAX_BATCH_CANCEL)


def _task_id(raw: str) -> str:
    if not TASK_ID.fullmatch(raw):
        raise NotFound("task", raw[:64])
    return raw


def _idempotency_key(request: web.Request) -> str | None:
    return header_text(request, IDEMPOTENCY_HEADER, IDEMPOTENCY_KEY_MAX)


@routes.post("/api/v1/task")
async def create_task(request: web.Request) -> web.Response:
    """One round trip when the key is cached: the create script checks key and plan itself."""
    digest, user = await cached_user(request)
    idempotency_key = _idempotency_key(request)
    raw = await json_body(request)
    check_task_input(raw)
    body = parse(CreateTaskRequest, raw)
    tasks = request.app[SERVICES].tasks
    try:
        try:
            return ok(await tasks.create(user, body, idempotency_key, key_digest=digest))
        except UserChanged:  # plan or settings changed since the cache read them: once more, fresh
            _, user = await cached_user(request, fresh=True)
            return ok(await tasks.create(user, body, idempotency_key, key_digest=digest))
    except Unauthorized:
        request.app[KEY_CACHE].drop(digest)
        raise


@routes.get("/api/v1/task/{task_id}")
async def get_task(request: web.Request) -> web.Response:
    """One round trip: the key is checked by the script that reads the task."""
    raw_id = request.match_info["task_id"]
    if not TASK_ID.fullmatch(raw_id):  # unknown without Redis, but a bad key is a 401 first
        await current_user(request)
        raise NotFound("task", raw_id[:64])
    user, task = await request.app[SERVICES].tasks.get_for_key(key_digest(api_key_of(request)), raw_id)
    structlog.contextvars.bind_contextvars(user_id=user.user_id)
    return ok(task)


@routes.post("/api/v1/task/cancel")
async def cancel_tasks(request: web.Request) -> web.Response:
    user = await current_user(request)
    batch = parse(CancelBatch, await json_body(request))
    task_ids = [_task_id(t) for t in batch.task_ids]
    return ok(await request.app[SERVICES].tasks.cancel(user.user_id, task_ids))


@routes.post("/api/v1/task/{task_id}/cancel")
async def cancel_task(request: web.Request) -> web.Response:
    user = await current_user(request)
    task_id = _task_id(request.match_info["task_id"])
    [task] = await request.app[SERVICES].tasks.cancel(user.user_id, [task_id])
    return ok(task)


@routes.get("/api/v1/tasks")
async def list_tasks(request: web.Request) -> web.Response:
    user = await current_user(request)
    size_max = request.app[APP_SETTINGS].page_size_max
    page = int_param(request, "page", 1, 1, 1_000_000)
    size = int_param(request, "size", min(DEFAULT_PAGE_SIZE, size_max), 1, size_max)
    tasks, total = await request.app[SERVICES].tasks.list(user.user_id, page=page, size=size)
    return ok({"tasks": tasks, "total": total, "page": page, "size": size})


@routes.get("/api/v1/account")
async def account(request: web.Request) -> web.Response:
    user = await current_user(request)
    return ok(await request.app[SERVICES].wallets.account_view(user))


@routes.get("/api/v1/account/notifications")
async def account_notifications(request: web.Request) -> web.Response:
    user = await current_user(request)
    return ok(await request.app[SERVICES].accounts.events(user.user_id))
