"""GoAPI's spellings of the customer API that public clients use (DESIGN.md §4).

- ``DELETE /api/v1/task/{task_id}``: cancel, as ``POST /api/v1/task/{task_id}/cancel``.
- GoAPI's account-management reads, at the paths its documentation and public clients use
  (piapi.ai/docs/account-info-api, task-list-api, piapi-user-history-query; PiAPI-1/piapi-cli
  ``src/client/endpoints.ts``): ``GET /account/info``, ``GET /account/active_tasks`` and
  ``GET /api/open/tasks/histories``.
- Every customer route also answers with a trailing slash (``add_trailing_slashes``), so a client that
  writes ``/api/v1/task/`` reaches the same handler instead of a 404 (no redirect: a redirected POST
  loses its body in many clients).

GoAPI's file upload (``POST https://upload.theapi.app/api/ephemeral_resource``) is not served: taskgate
stores no files (see README, "GoAPI compatibility")."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from aiohttp import web

from taskgate.api.auth import current_user
from taskgate.api.routes import TASK_ID, account, list_tasks
from taskgate.api.state import SERVICES
from taskgate.errors import NotFound
from taskgate.models import TERMINAL_STATUSES, TaskStatus
from taskgate.web.envelope import ok

routes = web.RouteTableDef()
SLASH_PREFIXES = ("/api/", "/account")
# /account/active_tasks looks at the customer's newest tasks only: live tasks are the newest, and a read
# must not walk a backlog of millions (a user with more queued tasks sees the newest this many counted)
ACTIVE_SCAN_MAX = 10_000
SCAN_CHUNK = 500
COUNTED = {
    TaskStatus.STAGED: "staged_count",
    TaskStatus.PENDING: "pending_count",
    TaskStatus.PROCESSING: "processing_count",
}


@routes.delete("/api/v1/task/{task_id}")
async def delete_task(request: web.Request) -> web.Response:
    user = await current_user(request)
    raw = request.match_info["task_id"]
    if not TASK_ID.fullmatch(raw):
        raise NotFound("task", raw[:64])
    [task] = await request.app[SERVICES].tasks.cancel(user.user_id, [raw])
    return ok(task)


@routes.get("/account/active_tasks")
async def active_tasks(request: web.Request) -> web.Response:
    """Per model: ``{staged_count, pending_count, processing_count, active_tasks: [task ids]}``."""
    user = await current_user(request)
    return ok(await _active_by_model(request, user.user_id))


routes.get("/account/info")(account)  # the same view as /api/v1/account
routes.get("/api/open/tasks/histories")(list_tasks)


async def _active_by_model(request: web.Request, user_id: str) -> dict[str, dict[str, Any]]:
    services = request.app[SERVICES]
    redis, keys = services.redis, services.keys
    ids = [raw.decode() for raw in await redis.zrevrange(keys.user_tasks(user_id), 0, ACTIVE_SCAN_MAX - 1)]
    live: list[str] = []
    for start in range(0, len(ids), SCAN_CHUNK):
        chunk = ids[start : start + SCAN_CHUNK]
        pipe = redis.pipeline(transaction=False)
        for task_id in chunk:
            pipe.hget(keys.task(task_id), "status")
        statuses = await pipe.execute()
        live += [
            t
            for t, s in zip(chunk, statuses, strict=True)
            if s is not None and TaskStatus(s.decode()) not in TERMINAL_STATUSES
        ]
    counts: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"staged_count": 0, "pending_count": 0, "processing_count": 0, "active_tasks": []}
    )
    for task_id in live:
        record = await services.tasks.load(task_id)
        if record is None:
            continue
        view = await services.tasks.view(record)
        status = TaskStatus(view["status"])
        if status in COUNTED:
            entry = counts[view["model"]]
            entry[COUNTED[status]] += 1
            entry["active_tasks"].append(view["task_id"])
    return dict(counts)


def add_trailing_slashes(router: web.UrlDispatcher) -> None:
    """Register ``<path>/`` beside every customer route ``<path>`` (same handler, same method)."""
    for resource in list(router.resources()):
        path = resource.canonical
        if not path.startswith(SLASH_PREFIXES) or path.endswith("/"):
            continue
        for route in list(resource):
            router.add_route(route.method, path + "/", route.handler)
