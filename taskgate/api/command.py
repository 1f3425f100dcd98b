"""``taskgate api``: serve the HTTP API until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("api", help="serve the HTTP API")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.set_defaults(func=_run)


async def serve_api(settings: Any, stop: asyncio.Event) -> None:
    from taskgate.api.app import create_app
    from taskgate.api.server import start_api

    runner = await start_api(create_app(settings), settings, settings.api_host, settings.api_port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def _run(args: argparse.Namespace) -> int:
    from taskgate.process import run_role
    from taskgate.settings import Settings

    settings = Settings()
    updates = {k: v for k, v in (("api_host", args.host), ("api_port", args.port)) if v is not None}
    return run_role(serve_api, settings.model_copy(update=updates))
