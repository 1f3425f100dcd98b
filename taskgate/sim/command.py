"""``taskgate upstream-sim``: serve the simulated upstream until SIGINT/SIGTERM (exit 0)."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskgate.settings import Settings


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "upstream-sim", help="run the simulated upstream provider (DESIGN.md §9)"
    )
    parser.add_argument("--host", default=None, help="bind address (default: TASKGATE_SIM_HOST)")
    parser.add_argument("--port", type=int, default=None, help="port (default: TASKGATE_SIM_PORT)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from taskgate.process import run_role
    from taskgate.settings import Settings

    settings = Settings()
    host = args.host or settings.sim_host
    port = settings.sim_port if args.port is None else args.port

    async def role(settings: Settings, stop: asyncio.Event) -> None:
        await serve_sim(settings, stop, host=host, port=port)

    return run_role(role, settings)


async def serve_sim(settings: Settings, stop: asyncio.Event, *, host: str, port: int) -> None:
    """Run the simulator until ``stop`` is set (also usable by ``taskgate dev``)."""
    import structlog

    from taskgate.sim.server import start_sim

    log = structlog.get_logger(__name__)
    runner, bound = await start_sim(settings, host, port)
    log.info("sim_started", host=host, port=bound)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        log.info("sim_stopped")
