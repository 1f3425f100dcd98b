"""``POST /callbacks/v1/upstream/{task_id}/{attempt}/{token}``: an upstream says a job has ended.

The token is the attempt's secret (taskgate/providers/callbacks.py). A verified callback is published to
the workers as a wake-up for that one attempt; its body is not trusted or stored (the worker
polls the upstream for the result), so answering twice, late or for a replaced attempt is
harmless and any API replica can take it. A wrong token is ``404`` (nothing said about the task).

``POST /callbacks/v1/goapi/{task_id}/{attempt}``: GoAPI's ``webhook_config`` callback, body
``{"timestamp": ..., "data": <GoAPI task object>}``, its per-attempt secret in ``x-webhook-secret``
(a wrong or missing one is ``404``). It wakes the attempt only while that attempt is the task's
current one and still processing, and only for an ended upstream status (``completed``, ``failed``,
or one it does not know); anything else (a stale attempt, a replay after the end, progress) is
answered ``200`` with ``woken: false`` and changes nothing."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from taskgate.api.auth import APP_SETTINGS
from taskgate.api.requests import json_body
from taskgate.api.state import SERVICES
from taskgate.errors import InvalidInput, NotFound
from taskgate.providers import callbacks
from taskgate.web.envelope import ok

routes = web.RouteTableDef()
RUNNING_STATUSES = frozenset({"pending", "staged", "processing", "running"})  # no wake-up for these
SECRET_MAX = 200


@routes.post(callbacks.ROUTE)
async def upstream_callback(request: web.Request) -> web.Response:
    task_id, attempt = request.match_info["task_id"], _attempt(request)
    settings = request.app[APP_SETTINGS]
    if attempt < 0 or not callbacks.verify(settings, task_id, attempt, request.match_info["token"]):
        raise NotFound("callback", task_id)
    services = request.app[SERVICES]
    await services.redis.publish(services.keys.upstream_callbacks(), callbacks.wake_message(task_id, attempt))
    return ok(None)


@routes.post(callbacks.GOAPI_ROUTE)
async def goapi_callback(request: web.Request) -> web.Response:
    task_id, attempt = request.match_info["task_id"], _attempt(request)
    given = request.headers.get(callbacks.SECRET_HEADER, "")[:SECRET_MAX]
    if attempt < 0 or not callbacks.verify_secret(request.app[APP_SETTINGS], task_id, attempt, given):
        raise NotFound("callback", task_id)
    data = _goapi_task(await json_body(request))
    services = request.app[SERVICES]
    status, current, upstream_id = await services.redis.hmget(
        services.keys.task(task_id), ["status", "attempt", "upstream_id"]
    )
    woken = (
        status == b"processing"
        and current is not None
        and int(current) == attempt
        and str(data.get("status", "")).strip().lower() not in RUNNING_STATUSES
        and (not upstream_id or not data.get("task_id") or str(data["task_id"]) == upstream_id.decode())
    )
    if woken:
        await services.redis.publish(
            services.keys.upstream_callbacks(), callbacks.wake_message(task_id, attempt)
        )
    return ok({"woken": woken})


def _attempt(request: web.Request) -> int:
    raw = request.match_info["attempt"]
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else -1


def _goapi_task(body: dict[str, Any]) -> dict[str, Any]:
    """``data`` of GoAPI's webhook body (the task object)."""
    data = body.get("data")
    if not isinstance(data, dict):
        raise InvalidInput("data", "GoAPI's webhook carries the task object in data")
    return data
