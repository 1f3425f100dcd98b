"""The small HTTP server of the worker and scheduler: ``/metrics``, ``/healthz`` (liveness: the
role's loop has beaten recently) and ``/readyz`` (readiness: Redis answers PING and is a master)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from taskgate.metrics.process import ProcessMetrics
from taskgate.web.envelope import error, ok

log = structlog.get_logger(__name__)

READY_TIMEOUT_S = 2.0


class Liveness:
    """The role's loop calls ``beat()``; it is alive while the last beat is recent enough."""

    def __init__(self, stale_after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after_s, self.clock = stale_after_s, clock
        self.last_beat = clock()

    def beat(self) -> None:
        self.last_beat = self.clock()

    def age_s(self) -> float:
        return self.clock() - self.last_beat

    def alive(self) -> bool:
        return self.age_s() <= self.stale_after_s


async def redis_master(redis: Redis) -> str | None:
    """None when Redis answers PING and ROLE says master; else why not."""
    try:
        await asyncio.wait_for(redis.ping(), READY_TIMEOUT_S)
        role = await asyncio.wait_for(redis.role(), READY_TIMEOUT_S)
    except (RedisError, OSError, TimeoutError) as exc:
        return f"Redis does not answer ({exc.__class__.__name__})"
    name = role[0].decode() if isinstance(role[0], bytes) else str(role[0])
    return None if name == "master" else f"Redis is a {name}, not a master"


def create_probe_app(metrics: ProcessMetrics, liveness: Liveness, redis: Redis) -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        if not liveness.alive():
            return error(
                503, "not alive: the loop has not run recently", {"age_s": round(liveness.age_s(), 1)}
            )
        return ok({"status": "alive", "age_s": round(liveness.age_s(), 3)})

    async def readyz(request: web.Request) -> web.Response:
        why = await redis_master(redis)
        if why is not None:
            return error(503, f"not ready: {why}")
        return ok({"status": "ready"})

    async def render(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", render)
    return app


async def serve_probes(app: web.Application, host: str, port: int) -> web.AppRunner | None:
    """Serve the probes; a port already taken (several roles on one host with the default port)
    is logged loudly and the role runs on without probes rather than dying."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        log.warning(
            "probes_unavailable",
            host=host,
            port=port,
            error=str(exc),
            hint="give each process on this host its own probe port, or 0 to turn probes off",
        )
        return None
    log.info("probes_listening", host=host, port=port)
    return runner
