"""Running one role of taskgate as a process until SIGINT/SIGTERM (graceful shutdown)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

from taskgate.settings import Settings

Role = Callable[[Settings, asyncio.Event], Awaitable[None]]


def fast_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (cheaper transports and callbacks), else None
    (asyncio's default loop)."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run_role(role: Role, settings: Settings) -> int:
    """Configure logging, run ``role(settings, stop)`` (on uvloop when it is installed) and set
    ``stop`` on SIGINT/SIGTERM."""
    from taskgate.logging import configure_logging

    configure_logging(settings.log_profile, settings.log_level)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await role(settings, stop)

    with asyncio.Runner(loop_factory=fast_loop_factory()) as runner:
        runner.run(main())
    return 0
