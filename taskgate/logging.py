"""Logging set up once per process: structlog with JSON (production) or console (a terminal)
rendering; stdlib loggers (arq, aiohttp.access) go through the same processors; secrets are
scrubbed from every event."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from structlog.types import EventDict, Processor

SECRET_KEY_RE = re.compile(r"(api_?key|secret|token|password|credential|authorization)", re.IGNORECASE)
SECRET_VALUE_RE = re.compile(r"\b(tg_[A-Za-z0-9_\-]{30,}|whsec_[A-Za-z0-9+/=]{10,})")
REDACTED = "***"
_configured = False


def scrub_secrets(_: Any, __: str, event: EventDict) -> EventDict:
    """Redact values under secret-looking keys and anything shaped like an API key."""
    for key, value in list(event.items()):
        if SECRET_KEY_RE.search(key):
            event[key] = REDACTED
        elif isinstance(value, str):
            event[key] = SECRET_VALUE_RE.sub(REDACTED, value)
    return event


def _shared() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        scrub_secrets,
    ]


def configure_logging(profile: str = "auto", level: str = "INFO") -> None:
    """Idempotent. ``profile``: json, console, or auto (console when stderr is a terminal)."""
    global _configured
    if profile == "auto":
        profile = "console" if sys.stderr.isatty() else "json"
    renderer: Processor
    if profile == "json":
        renderer = structlog.processors.JSONRenderer()
        final: list[Processor] = [structlog.processors.dict_tracebacks, renderer]
    else:
        final = [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    structlog.configure(
        processors=[*_shared(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("arq", "aiohttp.access", "aiohttp.server"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    _configured = True
