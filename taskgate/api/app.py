"""The aiohttp application: task, account and admin API, metrics, health checks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from redis.exceptions import RedisError

from taskgate.api import (
    admin_routes,
    callback_routes,
    compat_routes,
    dashboard,
    openapi,
    routes,
    task_admin_routes,
)
from taskgate.api.auth import APP_SETTINGS, KEY_CACHE, KeyCache
from taskgate.api.gauges import refresh_gauges, register_gauges
from taskgate.api.middleware import METRICS, ApiMetrics, envelope_middleware
from taskgate.api.overview import CLUSTER
from taskgate.api.state import SERVICES
from taskgate.logging import remember_secret
from taskgate.metrics.cluster import ClusterCollector
from taskgate.metrics.process import ProcessMetrics
from taskgate.services import Services, assemble
from taskgate.settings import Settings
from taskgate.store.connection import redis_client, redis_ready, wait_for_redis
from taskgate.web.envelope import error, ok

REGISTRY = web.AppKey("registry", CollectorRegistry)
READY_TIMEOUT_S = 2.0
log = structlog.get_logger(__name__)


async def healthz(request: web.Request) -> web.Response:
    return ok({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when Redis answers as a master; 503 with Retry-After while it is unreachable, a replica
    (the client still points at a demoted master) or failing over."""
    ready, reason = await redis_ready(request.app[SERVICES].redis, READY_TIMEOUT_S)
    if not ready:
        response = error(503, "not ready: " + reason, {"reason": reason})
        response.headers["Retry-After"] = "1"
        return response
    return ok({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition; without Redis the HTTP metrics still render (gauges keep their last values)."""
    try:
        await refresh_gauges(request.app[REGISTRY])
        await asyncio.wait_for(request.app[CLUSTER].refresh(), READY_TIMEOUT_S)
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("metrics_refresh_failed", reason=exc.__class__.__name__)
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(settings: Settings, services: Services | None = None) -> web.Application:
    """The API. Without ``services`` they are built at startup and closed at shutdown."""
    # aiohttp refuses a body of client_max_size bytes or more; a body of exactly the limit is allowed
    app = web.Application(middlewares=[envelope_middleware], client_max_size=settings.body_limit_bytes + 1)
    app[APP_SETTINGS] = settings
    app[KEY_CACHE] = KeyCache(settings.auth_cache_s)
    remember_secret(settings.admin_token.get_secret_value(), process=True)
    registry = CollectorRegistry()
    app[REGISTRY] = registry
    app[METRICS] = ApiMetrics(registry)
    ProcessMetrics("api", registry)  # build info and process metrics

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        owned = services is None
        # the API serves at once: 503 + Retry-After while Redis is away, then it recovers alone
        app[SERVICES] = services if services is not None else assemble(settings, redis_client(settings))
        register_gauges(registry, app[SERVICES])
        waiting = asyncio.create_task(wait_for_redis(app[SERVICES].redis, "api"))
        app[CLUSTER] = ClusterCollector(app[SERVICES].scripts, app[SERVICES].keys, settings.metrics_cache_s)
        registry.register(app[CLUSTER])
        yield
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        if owned:
            await app[SERVICES].close()

    app.cleanup_ctx.append(lifecycle)
    app.add_routes(routes.routes)
    app.add_routes(admin_routes.routes)
    app.add_routes(callback_routes.routes)
    app.add_routes(task_admin_routes.routes)
    app.add_routes(dashboard.routes)
    app.add_routes(openapi.routes)
    app.add_routes(compat_routes.routes)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    compat_routes.add_trailing_slashes(app.router)  # last: covers every customer route added above
    return app
