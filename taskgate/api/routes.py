"""The customer API (DESIGN.md §4): tasks and account, authenticated by ``x-api-key``."""

from __future__ import annotations

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from taskgate.api.envelope import ok
from taskgate.api.requests import int_param, json_body, parse
from taskgate.api.state import SERVICES
from taskgate.models import CreateTaskRequest
from taskgate.users import UserRecord

routes = web.RouteTableDef()
MAX_BATCH_CANCEL = 100


class CancelBatch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    task_ids: list[str] = Field(min_length=1, max_length=MAX_BATCH_CANCEL)


async def current_user(request: web.Request) -> UserRecord:
    user = await request.app[SERVICES].users.authenticate(request.headers.get("x-api-key"))
    structlog.contextvars.bind_contextvars(user_id=user.user_id)
    return user


@routes.post("/api/v1/task")
async def create_task(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = parse(CreateTaskRequest, await json_body(request))
    task = await request.app[SERVICES].tasks.create(user, body, request.headers.get("Idempotency-Key"))
    return ok(task)


@routes.get("/api/v1/task/{task_id}")
async def get_task(request: web.Request) -> web.Response:
    user = await current_user(request)
    return ok(await request.app[SERVICES].tasks.get(user.user_id, request.match_info["task_id"]))


@routes.post("/api/v1/task/cancel")
async def cancel_tasks(request: web.Request) -> web.Response:
    user = await current_user(request)
    batch = parse(CancelBatch, await json_body(request))
    return ok(await request.app[SERVICES].tasks.cancel(user.user_id, batch.task_ids))


@routes.post("/api/v1/task/{task_id}/cancel")
async def cancel_task(request: web.Request) -> web.Response:
    user = await current_user(request)
    [task] = await request.app[SERVICES].tasks.cancel(user.user_id, [request.match_info["task_id"]])
    return ok(task)


@routes.get("/api/v1/tasks")
async def list_tasks(request: web.Request) -> web.Response:
    user = await current_user(request)
    page = int_param(request, "page", 1, 1, 1_000_000)
    size = int_param(request, "size", 20, 1, 100)
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
