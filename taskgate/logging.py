"""Logging set up once per process (DESIGN.md §10, STYLE.md "Logging").

structlog renders JSON in production and a readable console in a terminal; stdlib loggers (root,
arq, aiohttp.access, aiohttp.server) go through the same processors via ``ProcessorFormatter``;
``scrub_secrets`` redacts credentials from every event, whichever logger produced it."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog
from structlog.types import EventDict, Processor

PROFILES = ("auto", "json", "console")
STDLIB_LOGGERS = ("arq", "aiohttp.access", "aiohttp.server")
# keys whose values are never logged: api_key, x-api-key, client_secret, admin_token, password, ...
SECRET_KEY_RE = re.compile(
    r"(api[_-]?key|secret|token|passw(or)?d|credential|authori[sz]ation)", re.IGNORECASE
)
# values that look like a taskgate API key or a Standard Webhooks signing secret, wherever they appear
SECRET_VALUE_RE = re.compile(r"(?<![A-Za-z0-9])(tg_[A-Za-z0-9_\-]{30,}|whsec_[A-Za-z0-9+/=_\-]{8,})")
REDACTED = "***"
_HANDLER_NAME = "taskgate"  # marks our handler so a second configure_logging replaces it


def _scrub(key: str, value: Any) -> Any:
    if SECRET_KEY_RE.search(key):
        return REDACTED
    if isinstance(value, str):
        return SECRET_VALUE_RE.sub(REDACTED, value)
    if isinstance(value, Mapping):
        return {k: _scrub(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub("", v) for v in value]
    return value


def scrub_secrets(_: Any, __: str, event: EventDict) -> EventDict:
    """Redact values under secret-looking keys (nested too) and anything shaped like a key."""
    for key, value in list(event.items()):
        event[key] = _scrub(key, value)
    return event


def shared_processors() -> list[Processor]:
    """Run for every event: structlog's and the stdlib's ("foreign") alike."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        scrub_secrets,
    ]


def resolve_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"log profile must be one of {PROFILES}, not {profile!r}")
    if profile == "auto":
        return "console" if sys.stderr.isatty() else "json"
    return profile


def _renderers(profile: str) -> list[Processor]:
    if profile == "json":
        return [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
    return [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]


def configure_logging(profile: str = "auto", level: str = "INFO") -> None:
    """Configure structlog and the stdlib root logger for this process.

    ``profile``: ``json``, ``console`` or ``auto`` (console when stderr is a terminal, else JSON).
    Idempotent: calling it again replaces the handler it installed rather than adding another."""
    rendered = resolve_profile(profile)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_renderers(rendered)],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != _HANDLER_NAME] + [handler]
    root.setLevel(level.upper())
    for name in STDLIB_LOGGERS:
        stdlib_logger = logging.getLogger(name)
        stdlib_logger.handlers = []  # e.g. arq's own dictConfig handler
        stdlib_logger.propagate = True
