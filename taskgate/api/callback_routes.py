"""``POST /callbacks/v1/upstream/{task_id}/{attempt}/{token}``: an upstream says a job has ended.

The token is the attempt's secret (taskgate/callbacks.py). A verified callback is published to
the workers as a wake-up for that one attempt; its body is not trusted or stored (the worker
polls the upstream for the result), so answering twice, late or for a replaced attempt is
harmless and any API replica can take it. A wrong token is ``404`` (nothing said about the task)."""

from __future__ import annotations

from aiohttp import web

from taskgate import callbacks
from taskgate.api.auth import APP_SETTINGS
from taskgate.api.envelope import ok
from taskgate.api.state import SERVICES
from taskgate.errors import NotFound

routes = web.RouteTableDef()


@routes.post(callbacks.ROUTE)
async def upstream_callback(request: web.Request) -> web.Response:
    task_id, raw_attempt = request.match_info["task_id"], request.match_info["attempt"]
    ascii_digits = raw_attempt.isascii() and raw_attempt.isdigit() and len(raw_attempt) < 10
    attempt = int(raw_attempt) if ascii_digits else -1
    settings = request.app[APP_SETTINGS]
    if attempt < 0 or not callbacks.verify(settings, task_id, attempt, request.match_info["token"]):
        raise NotFound("callback", task_id)
    services = request.app[SERVICES]
    await services.redis.publish(services.keys.upstream_callbacks(), callbacks.wake_message(task_id, attempt))
    return ok(None)
