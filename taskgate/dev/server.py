"""``taskgate dev``: every role in one process (DESIGN.md §2) — the API, the upstream simulator, the
scheduler and a worker — against the configured Redis, or against a private ``redis-server`` started
from PATH in a temp dir when nothing answers there. SIGINT/SIGTERM stop every part cleanly (exit 0).

``PrivateRedis`` is reused by ``taskgate demo``."""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog

from taskgate.settings import Settings
from taskgate.store.connection import redis_answers, redis_target
from taskgate.store.redis_launcher import RedisProcess, RedisServerMissing

log = structlog.get_logger(__name__)

ROLE_STOP_TIMEOUT_S = 30.0  # after `stop`, how long the scheduler and worker get before cancellation
EXIT_NO_REDIS = 2
EXIT_START_FAILED = 1
PASSWORD_RE = re.compile(r"^([a-z+]+://[^:/@]*:)[^@/]*@")


class RedisUnavailable(RuntimeError):
    """No Redis answers at the configured URL and no ``redis-server`` could be started."""


class DevStartFailed(RuntimeError):
    """A part of ``taskgate dev`` could not start (e.g. its port is taken)."""


def safe_url(url: str) -> str:
    """``url`` without its password, for logs and messages (also the many-host Sentinel form)."""
    return PASSWORD_RE.sub(r"\1***@", url)


class PrivateRedis:
    """The Redis that dev and demo use: ``settings.redis_url`` when it answers a PING, otherwise a
    private ``redis-server`` (no persistence) on a free loopback port in a temp dir, stopped and
    removed on exit. After entering: ``url`` is where Redis is; ``private`` says which case it is."""

    def __init__(self, settings: Settings, *, binary: str | None = None) -> None:
        self.settings = settings
        self.configured_url = settings.redis_url
        self.binary = binary
        self.url = settings.redis_url
        self.private = False
        self.dir: Path | None = None
        self.proc: RedisProcess | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    async def __aenter__(self) -> PrivateRedis:
        if await redis_answers(self.settings):
            return self
        if redis_target(self.settings).via_sentinel:  # a private one cannot stand in for a Sentinel set
            where = safe_url(self.configured_url)
            raise RedisUnavailable(f"no Redis master answered through Sentinel ({where})")
        binary = self.binary or shutil.which("redis-server")
        if binary is None:
            raise RedisUnavailable(
                f"no Redis answered at {safe_url(self.configured_url)} and there is no redis-server on PATH: "
                "install it (e.g. `apt-get install redis-server`) or point TASKGATE_REDIS_URL at a Redis"
            )
        await self._start(binary)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _start(self, binary: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="taskgate-dev-redis-"))
        try:
            for _ in range(3):  # a free port may be taken between choosing and binding it
                if await self._try_start(binary):
                    self.private = True
                    log.info(
                        "private_redis_started",
                        url=self.url,
                        pid=self.pid,
                        dir=str(self.dir),
                        configured=safe_url(self.configured_url),
                    )
                    return
            raise RedisUnavailable(f"redis-server did not start; see {self.dir / 'redis.log'}")
        except BaseException:
            log_file = self.dir / "redis.log"
            await self.stop(keep_dir=log_file.exists())  # keep redis.log for the operator to read
            raise

    async def _try_start(self, binary: str) -> bool:
        assert self.dir is not None
        self.proc = RedisProcess(binary, data_dir=self.dir, tied=True)
        try:
            await self.proc.start_async()
        except OSError as exc:
            self.proc = None
            raise RedisUnavailable(f"cannot run {binary}: {exc.strerror or exc}") from exc
        except RedisServerMissing:
            self.proc = None
            return False
        self.url = self.proc.url
        return True

    async def stop(self, *, keep_dir: bool = False) -> None:
        """Stop the private redis-server (if any) and remove its temp dir (unless ``keep_dir``)."""
        was_private, pid = self.private, self.pid
        proc, self.proc = self.proc, None
        if proc is not None:
            await asyncio.to_thread(proc.stop)
        self.private = False
        if self.dir is not None and not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        if was_private:
            log.info("private_redis_stopped", pid=pid)


# --- all roles in one process ----------------------------------------------------------------------


async def _serve(app: Any, host: str, port: int, what: str, limits: Settings | None = None) -> Any:
    """Start ``app`` on ``host:port``; returns its AppRunner (the caller cleans it up). With
    ``limits`` the API's server limits apply (api/server.py)."""
    from aiohttp import web

    from taskgate.api.server import ApiRunner

    runner = ApiRunner(app, limits) if limits is not None else web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise DevStartFailed(f"{what} cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return runner


async def _await_roles(roles: list[asyncio.Task[None]], stop: asyncio.Event) -> None:
    """Wait until ``stop`` is set or a role ends on its own (a failure: then stop the others)."""
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({stopped, *roles}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not stop.is_set():
        log.error("dev_role_ended", roles=[t.get_name() for t in roles if t.done()])
        stop.set()


async def _finish_roles(roles: list[asyncio.Task[None]]) -> None:
    """Let the roles shut down on ``stop``; cancel what is still running after the grace period."""
    if not roles:
        return
    _, pending = await asyncio.wait(roles, timeout=ROLE_STOP_TIMEOUT_S)
    for task in pending:
        log.warning("dev_role_cancelled", role=task.get_name())
        task.cancel()
    await asyncio.gather(*roles, return_exceptions=True)
    for task in roles:
        if not task.cancelled() and task.exception() is not None:
            log.error("dev_role_failed", role=task.get_name(), exc_info=task.exception())


async def run_dev(settings: Settings, *, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
    """API, simulator, scheduler and worker in this process until ``stop`` is set.

    ``settings.redis_url`` must answer (see ``PrivateRedis``). ``ready`` is set once every part
    runs. Shutdown order: the API stops taking requests, the scheduler and worker finish or hand back
    their work, then the simulator (which in-flight work talks to) stops."""
    from taskgate.api.app import create_app
    from taskgate.scheduler.runner import run_scheduler
    from taskgate.sim.server import create_sim_app
    from taskgate.worker.runner import run_worker

    roles: list[asyncio.Task[None]] = []
    api = sim = None
    try:
        sim = await _serve(create_sim_app(settings), settings.sim_host, settings.sim_port, "the simulator")
        api = await _serve(create_app(settings), settings.api_host, settings.api_port, "the API", settings)
        roles = [
            asyncio.create_task(run_scheduler(settings, stop), name="scheduler"),
            asyncio.create_task(run_worker(settings, stop), name="worker"),
        ]
        log.info(
            "dev_started",
            api=f"http://{settings.api_host}:{settings.api_port}",
            sim=f"http://{settings.sim_host}:{settings.sim_port}",
            redis=safe_url(settings.redis_url),
            prefix=settings.key_prefix,
        )
        if ready is not None:
            ready.set()
        await _await_roles(roles, stop)
    finally:
        stop.set()
        if api is not None:  # first: no new work while the roles wind down
            await api.cleanup()
        await _finish_roles(roles)
        if sim is not None:  # last: in-flight work talks to it
            await sim.cleanup()
        log.info("dev_stopped")


# --- the command -----------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dev",
        help="API, scheduler, worker and upstream simulator in one process "
        "(starts a private redis-server when no Redis answers)",
    )
    parser.add_argument("--port", type=int, default=None, help="API port (default TASKGATE_API_PORT, 8000)")
    parser.add_argument(
        "--sim-port", type=int, default=None, help="upstream simulator port (default TASKGATE_SIM_PORT, 8010)"
    )
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from taskgate.logging import configure_logging

    settings = Settings()
    updates = {k: v for k, v in (("api_port", args.port), ("sim_port", args.sim_port)) if v is not None}
    settings = settings.model_copy(update=updates)
    configure_logging(settings.log_profile, settings.log_level)
    try:
        asyncio.run(_main(settings))
    except RedisUnavailable as exc:
        print(f"taskgate dev: {exc}", file=sys.stderr)
        return EXIT_NO_REDIS
    except DevStartFailed as exc:
        print(f"taskgate dev: {exc}", file=sys.stderr)
        return EXIT_START_FAILED
    return 0


async def _main(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with PrivateRedis(settings) as redis:
            if redis.private:
                print(
                    f"taskgate dev: no Redis answered at {safe_url(settings.redis_url)}; started a private "
                    f"redis-server (pid {redis.pid}) at {redis.url}, data dir {redis.dir}, "
                    "no persistence; it stops when dev stops",
                    file=sys.stderr,
                    flush=True,
                )
            await run_dev(settings.model_copy(update={"redis_url": redis.url}), stop=stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
