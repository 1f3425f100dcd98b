"""Request middleware: request id and log context, one canonical log line per request, metrics,
and the one place where errors become HTTP statuses in the §4 envelope (never a traceback).

``_error_response`` maps every exception a handler lets escape; to answer a new class of error
(for example Redis being unavailable), add one ``except`` clause there. Anything unexpected is a
500 whose log line names the exception class and where it was raised, and carries no request
data (no body, headers or exception message: those may hold secrets or hostile input)."""

from __future__ import annotations

import os
import re
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from redis.exceptions import RedisError

from taskgate.api.auth import ADMIN_TOKEN_HEADER, API_KEY_HEADER, APP_SETTINGS
from taskgate.errors import TaskgateError, Unavailable
from taskgate.logging import remember_secret
from taskgate.store.connection import is_failover_error
from taskgate.web.envelope import error

log = structlog.get_logger("taskgate.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,64}")
STACK_FRAMES = 8  # innermost frames named in a 500's log line
CLIENT_GONE = 499  # nginx's status for "client closed the request"; never sent, only logged


class ApiMetrics:
    """The HTTP metrics; each label set's children are looked up once (``labels`` costs a lock and
    a dict build per call, on every request)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "taskgate_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "taskgate_http_request_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            registry=registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, elapsed: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(elapsed)


METRICS = web.AppKey("metrics", ApiMetrics)


def _route(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


def _request_id(request: web.Request) -> str:
    """The caller's x-request-id when it is a plain token (it is echoed in a header), else a new one."""
    given = request.headers.get("x-request-id", "")
    return given if given and REQUEST_ID_RE.fullmatch(given) else os.urandom(16).hex()


def _frames(exc: BaseException) -> list[str]:
    """Where an exception was raised, as ``file:line:function`` (no locals, no message)."""
    summary = traceback.extract_tb(exc.__traceback__)[-STACK_FRAMES:]
    return [f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}:{f.name}" for f in summary]


def _error_response(request: web.Request, exc: Exception, request_id: str) -> web.StreamResponse:
    """The envelope for an exception that escaped a handler (re-raises 1xx-3xx HTTPExceptions)."""
    try:
        raise exc
    except (Unavailable, RedisError) as e:  # Redis away or failing over -> 503, retry later
        return unavailable_response(request, e, request_id)
    except TaskgateError as e:
        if e.status >= 500:
            log.error("request_failed", route=_route(request), error=e.__class__.__name__, where=_frames(e))
        return error(e.status, e.message, e.detail)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[APP_SETTINGS].body_limit_bytes
        return error(413, "request body too large", {"limit_bytes": limit})
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return error(e.status, e.reason.lower(), {"method": request.method, "route": _route(request)})
    except ConnectionError as e:
        if not _client_gone(request):  # e.g. a backend connection: unexpected, not the client's doing
            return _unexpected(request, e, request_id)
        log.info("client_disconnected", route=_route(request), error=e.__class__.__name__)
        return error(CLIENT_GONE, "client disconnected")
    except Exception as e:
        return _unexpected(request, e, request_id)


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _unexpected(request: web.Request, exc: Exception, request_id: str) -> web.StreamResponse:
    log.error("request_failed", route=_route(request), error=exc.__class__.__name__, where=_frames(exc))
    return error(500, "internal error", {"request_id": request_id})


@web.middleware
async def envelope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = _request_id(request)
    started = time.perf_counter()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    for name in (API_KEY_HEADER, ADMIN_TOKEN_HEADER):  # wrong keys are secrets too (typos of real ones)
        remember_secret(request.headers.get(name))
    try:
        response = await handler(request)
    except Exception as exc:
        response = _error_response(request, exc, request_id)
    _observe(request, response, time.perf_counter() - started)
    response.headers["x-request-id"] = request_id
    return response


def unavailable_response(request: web.Request, exc: Exception, request_id: str) -> web.StreamResponse:
    """503 in the envelope with Retry-After; a RedisError that is no failover stays a 500."""
    if isinstance(exc, RedisError) and not is_failover_error(exc):
        return _unexpected(request, exc, request_id)
    message = exc.message if isinstance(exc, Unavailable) else Unavailable.message
    detail = exc.detail if isinstance(exc, Unavailable) else {"reason": exc.__class__.__name__}
    response = error(503, message, detail)
    response.headers["Retry-After"] = str(Unavailable.retry_after_s)
    return response


def _observe(request: web.Request, response: web.StreamResponse, elapsed: float) -> None:
    """The request's metrics and its one canonical log line (user_id comes from the context).
    The route pattern is logged, not the path: a path may be arbitrarily long hostile text."""
    route = _route(request)
    request.app[METRICS].observe(request.method[:16], route, response.status, elapsed)
    log.info(
        "request_handled",
        method=request.method[:16],
        route=route,
        status=response.status,
        ms=round(elapsed * 1000, 2),
    )
