"""Logging set up once per process (DESIGN.md §10, STYLE.md "Logging").

structlog renders JSON in production and a readable console in a terminal; stdlib loggers (root,
arq, aiohttp.access, aiohttp.server) go through the same processors via ``ProcessorFormatter``.
Every event, whichever logger produced it, passes three safety processors:

- ``render_exception`` turns ``exc_info`` into plain data *without frame locals* (locals hold
  request bodies and secrets) before any renderer sees it;
- ``scrub_secrets`` redacts values under secret-looking keys, anything shaped like a taskgate API
  key or signing secret, and every value registered with ``remember_secret`` (the admin token,
  the current request's webhook secret, ...), inside exception messages and reprs too;
- ``cap_values`` bounds every value (characters, items, depth), and the renderer is wrapped so
  that a line over ``LINE_CAP`` characters is replaced by a short line saying so."""

from __future__ import annotations

import contextvars
import functools
import logging
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.types import EventDict, Processor

PROFILES = ("auto", "json", "console")
STDLIB_LOGGERS = ("arq", "aiohttp.access", "aiohttp.server")
# keys whose values are never logged: api_key, x-api-key, client_secret, admin_token, password, ...
SECRET_KEY_RE = re.compile(
    r"(api[_-]?key|secret|token|passw(or)?d|credential|authori[sz]ation|cookie)", re.IGNORECASE
)
# values that look like a taskgate API key or a Standard Webhooks signing secret, wherever they appear
SECRET_VALUE_RE = re.compile(r"(?<![A-Za-z0-9])(tg_[A-Za-z0-9_\-]{30,}|whsec_[A-Za-z0-9+/=_\-]{8,})")
REDACTED = "***"
VALUE_CAP = 2_000  # characters of one rendered string value
ITEMS_CAP = 50  # entries of one list or mapping
DEPTH_CAP = 6  # nesting of one value
LINE_CAP = 16_384  # characters of one rendered log line
FRAMES_CAP = 20  # frames of one rendered traceback
SECRET_MIN_CHARS = 4  # shorter registered values would redact ordinary words
_HANDLER_NAME = "taskgate"  # marks our handler so a second configure_logging replaces it
_KEEP_ON_OVERFLOW = ("event", "level", "logger", "timestamp", "request_id", "task_id", "user_id")

# secrets known by value: process-wide (the admin token) and per request/job (a context variable)
_process_secrets: set[str] = set()
_context_secrets: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "taskgate_log_secrets", default=frozenset()
)


def remember_secret(value: str | None, *, process: bool = False) -> None:
    """Scrub ``value`` from every later log line (of this request/job, or of the process)."""
    if not value or len(value) < SECRET_MIN_CHARS:
        return
    if process:
        _process_secrets.add(value)
    else:
        _context_secrets.set(_context_secrets.get() | {value})


def _known_secrets() -> Iterable[str]:
    return _process_secrets | _context_secrets.get()


def _scrub_text(text: str, known: Iterable[str]) -> str:
    text = SECRET_VALUE_RE.sub(REDACTED, text)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    """Whether values under ``key`` are never logged (the same few keys come back on every line)."""
    return SECRET_KEY_RE.search(key) is not None


def _scrub(key: str, value: Any, known: frozenset[str], depth: int = 0) -> Any:
    if _secret_key(key):
        return REDACTED
    if isinstance(value, str):
        return _scrub_text(value, known)
    if isinstance(value, Mapping | list | tuple) and depth >= DEPTH_CAP:
        return "(nested too deep)"  # cap_values would drop it anyway
    if isinstance(value, Mapping):
        return {k: _scrub(str(k), v, known, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub("", v, known, depth + 1) for v in value]
    return value


def scrub_secrets(_: Any, __: str, event: EventDict) -> EventDict:
    """Redact values under secret-looking keys (nested too), anything shaped like a key, and
    every registered secret value wherever it appears."""
    known = frozenset(_known_secrets())
    for key, value in list(event.items()):
        if key != "_record":
            event[key] = _scrub(key, value, known)
    return event


def _cap(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        extra = len(value) - VALUE_CAP
        return value if extra <= 0 else f"{value[:VALUE_CAP]}...(+{extra} chars)"
    if isinstance(value, int | float | bool) or value is None:
        return value if not isinstance(value, int) or abs(value) < 10**30 else "(large integer)"
    if depth >= DEPTH_CAP:
        return "(nested too deep)"
    if isinstance(value, Mapping):
        items = list(value.items())
        out = {str(k)[:200]: _cap(v, depth + 1) for k, v in items[:ITEMS_CAP]}
        if len(items) > ITEMS_CAP:
            out["..."] = f"+{len(items) - ITEMS_CAP} more"
        return out
    if isinstance(value, list | tuple | set | frozenset):
        seq = list(value)
        capped = [_cap(v, depth + 1) for v in seq[:ITEMS_CAP]]
        return capped + ([f"... +{len(seq) - ITEMS_CAP} more"] if len(seq) > ITEMS_CAP else [])
    return _cap(_safe_repr(value), depth)


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)[: VALUE_CAP + 1]
    except Exception:  # a hostile or broken __repr__ must not break logging
        return f"<{type(value).__name__}>"


def cap_values(_: Any, __: str, event: EventDict) -> EventDict:
    """Bound every value of the event (characters, items, depth)."""
    for key, value in list(event.items()):
        if key != "_record":
            event[key] = _cap(value)
    return event


def _exc_info(value: Any) -> tuple[type[BaseException], BaseException, Any] | None:
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if isinstance(value, tuple) and len(value) == 3 and value[0] is not None:
        return value
    if value is True:
        info = sys.exc_info()
        return info if info[0] is not None else None
    return None


def render_exception(profile: str) -> Processor:
    """``exc_info`` -> ``exception``: JSON gets structlog's dict form, the console a text
    traceback; neither carries frame locals, both at most ``FRAMES_CAP`` frames."""
    to_dicts = ExceptionDictTransformer(show_locals=False, max_frames=FRAMES_CAP)

    def processor(_: Any, __: str, event: EventDict) -> EventDict:
        info = _exc_info(event.pop("exc_info", None))
        if info is None:
            return event
        if profile == "json":
            event["exception"] = to_dicts(info)
        else:
            lines = traceback.format_exception(info[1], limit=-FRAMES_CAP)
            event["exception"] = "".join(lines)
        return event

    return processor


def shared_processors(profile: str = "json") -> list[Processor]:
    """Run for every event: structlog's and the stdlib's ("foreign") alike."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        render_exception(profile),
        scrub_secrets,
        cap_values,
    ]


def resolve_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"log profile must be one of {PROFILES}, not {profile!r}")
    if profile == "auto":
        return "console" if sys.stderr.isatty() else "json"
    return profile


def line_capped(renderer: Callable[[Any, str, EventDict], Any]) -> Processor:
    """Render; a line longer than ``LINE_CAP`` is replaced by a short line that says so."""

    def processor(logger: Any, name: str, event: EventDict) -> Any:
        kept = {k: event[k] for k in _KEEP_ON_OVERFLOW if k in event}
        line = renderer(logger, name, event)
        if len(line) <= LINE_CAP:
            return line
        short = {k: v[:200] if isinstance(v, str) else v for k, v in kept.items()}
        return renderer(logger, name, {**short, "log_line_truncated": len(line)})

    return processor


def _renderers(profile: str) -> list[Processor]:
    if profile == "json":
        return [line_capped(structlog.processors.JSONRenderer())]
    return [line_capped(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))]


def configure_logging(profile: str = "auto", level: str = "INFO") -> None:
    """Configure structlog and the stdlib root logger for this process.

    ``profile``: ``json``, ``console`` or ``auto`` (console when stderr is a terminal, else JSON).
    Idempotent: calling it again replaces the handler it installed rather than adding another."""
    rendered = resolve_profile(profile)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared_processors(rendered),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors(rendered),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_renderers(rendered)],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != _HANDLER_NAME] + [handler]
    root.setLevel(level.upper())
    # no renderer shows the caller's file, line, thread or process: skip finding them for every
    # record (the stdlib's documented optimisations; a log line is written per API request)
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    for name in STDLIB_LOGGERS:
        stdlib_logger = logging.getLogger(name)
        stdlib_logger.handlers = []  # e.g. arq's own dictConfig handler
        stdlib_logger.propagate = True
