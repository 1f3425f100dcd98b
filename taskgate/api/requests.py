"""Reading request bodies, headers and parameters: bad input becomes InvalidInput naming the field.

Every JSON body is bounded before any model sees it (DESIGN.md §4, never a 5xx for bad input):
nesting depth, string and key lengths, integer and float literals, the number of values, and text
that cannot be encoded as UTF-8 (lone surrogates such as ``"\\ud800"``). A task's ``input`` has
tighter bounds of its own. These checks are generic; per-task-type rules live in ``catalogue/inputs.py``."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from pydantic import BaseModel, ValidationError

from taskgate.api.auth import APP_SETTINGS
from taskgate.catalogue.input_fields import first_error
from taskgate.errors import InvalidInput, RequestTimeout
from taskgate.logging import SECRET_KEY_RE, remember_secret

M = TypeVar("M", bound=BaseModel)

INT_MAX_DIGITS = 16  # longer integer literals are refused before they are parsed
INT_MAX = 2**53 - 1  # I-JSON (RFC 7493): integers every JSON reader (and Lua's doubles) hold exactly
FLOAT_MAX_CHARS = 40
FIELD_NAME_MAX = 80  # a field path quoted back in an error is cut to this many characters


@dataclass(frozen=True, slots=True)
class JsonBounds:
    max_depth: int
    max_items: int  # object members + array elements, counted over the whole value
    max_string: int  # characters of one string value
    max_key: int = 128  # characters of one object key


BODY_BOUNDS = JsonBounds(max_depth=32, max_items=5_000, max_string=65_536)
INPUT_BOUNDS = JsonBounds(max_depth=8, max_items=500, max_string=65_536)


@dataclass(frozen=True, slots=True)
class _Refused:
    """A JSON number or constant the parser refused; ``check_bounds`` reports it with its field."""

    reason: str


def _parse_int(text: str) -> int | _Refused:
    value = int(text) if len(text.lstrip("-")) <= INT_MAX_DIGITS else INT_MAX + 1
    if abs(value) > INT_MAX:
        return _Refused(f"integers must lie within -{INT_MAX}..{INT_MAX} (2^53 - 1)")
    return value


def _parse_float(text: str) -> float | _Refused:
    value = float(text)
    if len(text) > FLOAT_MAX_CHARS or not math.isfinite(value):
        return _Refused(f"numbers must be finite and at most {FLOAT_MAX_CHARS} characters long")
    return value


def _parse_constant(text: str) -> _Refused:
    return _Refused(f"{text} is not a JSON number")


def loads(raw: bytes) -> Any:
    """JSON without NaN/Infinity, with bounded number literals (refused ones stay as ``_Refused``
    markers for ``check_bounds`` to name), and nesting that cannot blow the stack."""
    try:
        return json.loads(raw, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except RecursionError:
        raise InvalidInput("body", f"nested more than {BODY_BOUNDS.max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise InvalidInput("body", f"not valid JSON ({exc.__class__.__name__})") from None


def _field(path: str) -> str:
    path = path or "body"
    return path if len(path) <= FIELD_NAME_MAX else path[: FIELD_NAME_MAX - 3] + "..."


def _name(parts: tuple[str | int, ...]) -> str:
    """``("input", "p", 0)`` -> ``input.p[0]``, cut to ``FIELD_NAME_MAX`` characters."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        if len(out) > FIELD_NAME_MAX:
            break
    return _field(out)


def _check_text(text: str, parts: tuple[str | int, ...], limit: int, what: str) -> None:
    if len(text) > limit:
        raise InvalidInput(_name(parts), f"{what} longer than {limit} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(_name(parts), f"{what} is not valid Unicode (lone surrogate)") from None


def check_bounds(value: Any, path: str, bounds: JsonBounds) -> None:
    """Walk ``value`` without recursion; the first value past a bound is an InvalidInput naming it
    (for nesting: the top-level field it is nested under)."""
    root: tuple[str | int, ...] = (path,) if path else ()
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(value, root, 0)]
    items = 0
    while stack:
        node, parts, depth = stack.pop()
        if isinstance(node, str):
            _check_text(node, parts, bounds.max_string, "text")
            continue
        if isinstance(node, _Refused):
            raise InvalidInput(_name(parts), node.reason)
        if not isinstance(node, dict | list):
            continue
        if depth >= bounds.max_depth:
            raise InvalidInput(_name(parts[:2]), f"nested more than {bounds.max_depth} levels")
        items += len(node)
        if items > bounds.max_items:
            raise InvalidInput(_field(path), f"more than {bounds.max_items} values in all")
        if isinstance(node, list):
            stack.extend((v, (*parts, i), depth + 1) for i, v in enumerate(node))
            continue
        for key, v in node.items():
            _check_text(key, parts, bounds.max_key, "a key")
            stack.append((v, (*parts, key), depth + 1))


async def read_body(request: web.Request) -> bytes:
    """The whole body, within the body read timeout (a slow sender gets 408, not a held worker)."""
    timeout = request.app[APP_SETTINGS].body_read_timeout_s
    try:
        if request.content.is_eof():  # all of it has arrived (a small body): nothing to wait for
            return await request.read()
        return await asyncio.wait_for(request.read(), timeout)
    except TimeoutError:
        raise RequestTimeout(timeout) from None
    except RequestPayloadError as exc:  # e.g. `Content-Encoding: gzip` on a body that is not gzip
        raise InvalidInput(
            "body", f"could not be read ({exc.__class__.__name__}): check Content-Encoding"
        ) from None


async def json_body(request: web.Request) -> dict[str, Any]:
    raw = await read_body(request)
    if not raw:
        raise InvalidInput("body", "a JSON object is required")
    body = loads(raw)
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object")
    check_bounds(body, "", BODY_BOUNDS)
    remember_body_secrets(body)
    return body


def remember_body_secrets(value: Any) -> None:
    """Every string under a secret-looking key (webhook secret, account api_key, ...) is scrubbed
    from this request's log lines by value, wherever it may later appear (exception reprs too)."""
    stack = [value]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, v in items:
            if isinstance(key, str) and isinstance(v, str) and SECRET_KEY_RE.search(key):
                remember_secret(v)
            elif isinstance(v, dict | list):
                stack.append(v)


def check_task_input(body: dict[str, Any]) -> None:
    """The tighter bounds of a task's ``input`` (it is stored with the task and sent upstream)."""
    task_input = body.get("input")
    if isinstance(task_input, dict):
        check_bounds(task_input, "input", INPUT_BOUNDS)


def header_text(request: web.Request, name: str, max_len: int) -> str | None:
    """A header as text, or InvalidInput when it is too long or not printable UTF-8 (aiohttp
    decodes header bytes with surrogateescape, so invalid bytes arrive as lone surrogates)."""
    value = request.headers.get(name)
    if value is None:
        return None
    if not 1 <= len(value) <= max_len:
        raise InvalidInput(name, f"must be 1 to {max_len} characters")
    if not printable_utf8(value):
        raise InvalidInput(name, "must be printable UTF-8 text")
    return value


def printable_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return value.isprintable()


def parse(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        loc, reason = first_error(exc)
        raise InvalidInput(_field(".".join(loc)), reason) from exc


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    value = request.query.get(name)
    if value is None:
        return default
    try:
        number = int(value) if len(value) <= INT_MAX_DIGITS else None
    except ValueError:
        number = None
    if number is None:
        raise InvalidInput(name, "must be an integer")
    if not low <= number <= high:
        raise InvalidInput(name, f"must be between {low} and {high}")
    return number
