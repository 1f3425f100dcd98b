"""Admin task tools under ``/admin/v1`` (header ``x-admin-token``): list, show, cancel, retry,
requeue, redeliver; and the operator's overview the dashboard shows."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from taskgate.admin.tasks import LIST_LIMIT_MAX, TaskAdmin, TaskFilter
from taskgate.api.auth import require_admin
from taskgate.api.overview import overview_for
from taskgate.api.requests import parse
from taskgate.api.state import SERVICES
from taskgate.models import TaskStatus
from taskgate.web.envelope import ok

routes = web.RouteTableDef()
P = "/admin/v1"


class TaskQuery(BaseModel):
    """Query parameters of ``GET /admin/v1/tasks``."""

    model_config = ConfigDict(extra="forbid")
    status: TaskStatus | None = None
    user_id: str | None = Field(None, max_length=64)
    account_id: str | None = Field(None, max_length=64)
    min_age_s: float = Field(0.0, ge=0, description="only tasks at least this old")
    max_age_s: float | None = Field(None, ge=0, description="only tasks at most this old")
    limit: int = Field(50, ge=1, le=LIST_LIMIT_MAX)

    def to_filter(self) -> TaskFilter:
        return TaskFilter(
            status=str(self.status) if self.status else None,
            user_id=self.user_id,
            account_id=self.account_id,
            min_age_s=self.min_age_s,
            max_age_s=self.max_age_s,
            limit=self.limit,
        )


def task_admin(request: web.Request) -> TaskAdmin:
    return TaskAdmin(request.app[SERVICES])


async def list_tasks_for(request: web.Request) -> list[dict[str, object]]:
    query = parse(TaskQuery, dict(request.query))
    return await task_admin(request).list(query.to_filter())


@routes.get(P + "/tasks")
async def list_tasks(request: web.Request) -> web.Response:
    require_admin(request)
    return ok(await list_tasks_for(request))


@routes.get(P + "/tasks/{task_id}")
async def show_task(request: web.Request) -> web.Response:
    require_admin(request)
    return ok(await task_admin(request).show(request.match_info["task_id"]))


@routes.post(P + "/tasks/{task_id}/cancel")
async def cancel_task(request: web.Request) -> web.Response:
    require_admin(request)
    return ok(await task_admin(request).cancel(request.match_info["task_id"]))


@routes.post(P + "/tasks/{task_id}/retry")
async def retry_task(request: web.Request) -> web.Response:
    require_admin(request)
    return ok(await task_admin(request).retry(request.match_info["task_id"]))


@routes.post(P + "/tasks/{task_id}/requeue")
async def requeue_task(request: web.Request) -> web.Response:
    require_admin(request)
    return ok(await task_admin(request).requeue(request.match_info["task_id"]))


@routes.post(P + "/tasks/{task_id}/redeliver")
async def redeliver_webhook(request: web.Request) -> web.Response:
    require_admin(request)
    return ok(await task_admin(request).redeliver(request.match_info["task_id"]))


@routes.get(P + "/overview")
async def overview(request: web.Request) -> web.Response:
    require_admin(request)
    return ok(await overview_for(request))
