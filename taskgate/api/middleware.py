"""Request middleware: request id and log context, one canonical log line per request, metrics,
and the one place where errors become HTTP statuses in the §4 envelope (never a traceback)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from redis.exceptions import RedisError

from taskgate.api.auth import APP_SETTINGS
from taskgate.api.envelope import error
from taskgate.errors import TaskgateError, Unavailable
from taskgate.store.connection import is_failover_error

log = structlog.get_logger("taskgate.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("taskgate_http_requests", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=registry)
        self.latency = Histogram("taskgate_http_request_seconds", "HTTP request latency by route",
                                 ["method", "route"], registry=registry)


METRICS = web.AppKey("metrics", ApiMetrics)


def _route(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


@web.middleware
async def envelope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.headers.get("x-request-id", "")[:64] or uuid.uuid4().hex
    started = time.perf_counter()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await handler(request)
    except (Unavailable, RedisError) as exc:  # issue 11: Redis away or failing over -> 503, retry
        response = unavailable_response(exc)
    except TaskgateError as exc:
        if exc.status >= 500:
            log.exception("request_failed", method=request.method, path=request.path)
        response = error(exc.status, exc.message, exc.detail)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[APP_SETTINGS].body_limit_bytes
        response = error(413, "request body too large", {"limit_bytes": limit})
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error(exc.status, exc.reason.lower(), {"method": request.method, "path": request.path})
    except Exception:
        log.exception("request_failed", method=request.method, path=request.path)
        response = error(500, "internal error", {"request_id": request_id})
    _observe(request, response, time.perf_counter() - started)
    response.headers["x-request-id"] = request_id
    return response


def unavailable_response(exc: Exception) -> web.Response:
    """503 in the envelope with Retry-After; a RedisError that is no failover stays a 500."""
    if isinstance(exc, RedisError) and not is_failover_error(exc):
        log.exception("request_failed")
        return error(500, "internal error", None)
    message = exc.message if isinstance(exc, Unavailable) else Unavailable.message
    detail = exc.detail if isinstance(exc, Unavailable) else {"reason": exc.__class__.__name__}
    response = error(503, message, detail)
    response.headers["Retry-After"] = str(Unavailable.retry_after_s)
    return response


def _observe(request: web.Request, response: web.StreamResponse, elapsed: float) -> None:
    """The request's metrics and its one canonical log line (user_id comes from the context)."""
    route = _route(request)
    metrics = request.app[METRICS]
    metrics.requests.labels(request.method, route, str(response.status)).inc()
    metrics.latency.labels(request.method, route).observe(elapsed)
    log.info("request_handled", method=request.method, route=route, path=request.path,
             status=response.status, ms=round(elapsed * 1000, 2))
