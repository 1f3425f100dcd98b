"""The aiohttp application: task, account and admin API, metrics, health checks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from redis.exceptions import RedisError

from taskgate.api import admin_routes, callback_routes, routes
from taskgate.api.auth import APP_SETTINGS
from taskgate.api.envelope import error, ok
from taskgate.api.gauges import refresh_gauges, register_gauges
from taskgate.api.middleware import METRICS, ApiMetrics, envelope_middleware
from taskgate.api.state import SERVICES
from taskgate.services import Services, build_services
from taskgate.settings import Settings

REGISTRY = web.AppKey("registry", CollectorRegistry)
READY_TIMEOUT_S = 2.0
log = structlog.get_logger(__name__)


async def healthz(request: web.Request) -> web.Response:
    return ok({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when Redis answers; 503 (not a 500 with a traceback) while it does not."""
    try:
        await asyncio.wait_for(request.app[SERVICES].redis.ping(), READY_TIMEOUT_S)
    except (RedisError, OSError, TimeoutError) as exc:
        return error(503, "not ready: Redis does not answer", {"reason": exc.__class__.__name__})
    return ok({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition; without Redis the HTTP metrics still render (gauges keep their last values)."""
    try:
        await refresh_gauges(request.app[REGISTRY])
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("metrics_refresh_failed", reason=exc.__class__.__name__)
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(settings: Settings, services: Services | None = None) -> web.Application:
    """The API. Without ``services`` they are built at startup and closed at shutdown."""
    # aiohttp refuses a body of client_max_size bytes or more; a body of exactly the limit is allowed
    app = web.Application(middlewares=[envelope_middleware], client_max_size=settings.body_limit_bytes + 1)
    app[APP_SETTINGS] = settings
    registry = CollectorRegistry()
    app[REGISTRY] = registry
    app[METRICS] = ApiMetrics(registry)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        owned = services is None
        app[SERVICES] = services if services is not None else await build_services(settings)
        register_gauges(registry, app[SERVICES])
        yield
        if owned:
            await app[SERVICES].close()

    app.cleanup_ctx.append(lifecycle)
    app.add_routes(routes.routes)
    app.add_routes(admin_routes.routes)
    app.add_routes(callback_routes.routes)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app
