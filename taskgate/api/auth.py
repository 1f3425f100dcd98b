"""Who is calling: customers by ``x-api-key`` (DESIGN.md §4) or ``Authorization: Bearer``, operators by
``x-admin-token``."""

from __future__ import annotations

import hmac

import structlog
from aiohttp import web

from taskgate.api.state import SERVICES
from taskgate.errors import Unauthorized
from taskgate.settings import Settings
from taskgate.users import UserRecord

API_KEY_HEADER = "x-api-key"
ADMIN_TOKEN_HEADER = "x-admin-token"

# The settings this app was built with (body limit, admin token, page size); they may differ from
# the settings the shared services were built with (tests, ``taskgate dev``).
APP_SETTINGS = web.AppKey("settings", Settings)


def _header(request: web.Request, name: str) -> str:
    """A credential header, or "" when absent or not UTF-8 (aiohttp keeps invalid bytes as lone
    surrogates, which no key or token contains; they must not reach hashing as a 500)."""
    value = request.headers.get(name, "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return ""
    return value


def api_key_of(request: web.Request) -> str | None:
    """``x-api-key``, else ``Authorization: Bearer <key>`` (the form GoAPI's OpenAI-style endpoints and
    some public clients send)."""
    key = _header(request, API_KEY_HEADER)
    if key:
        return key
    scheme, _, token = _header(request, "Authorization").strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def current_user(request: web.Request) -> UserRecord:
    """The customer behind ``x-api-key`` (or a Bearer token); binds ``user_id`` to the log context."""
    user = await request.app[SERVICES].users.authenticate(api_key_of(request))
    structlog.contextvars.bind_contextvars(user_id=user.user_id)
    return user


def require_admin(request: web.Request) -> None:
    """Constant-time check of ``x-admin-token``; an empty configured token disables the admin API."""
    expected = request.app[APP_SETTINGS].admin_token.get_secret_value()
    if not expected:
        raise Unauthorized("the admin API is disabled: set TASKGATE_ADMIN_TOKEN to enable it")
    given = _header(request, ADMIN_TOKEN_HEADER)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("missing or invalid admin token (header x-admin-token)")
    structlog.contextvars.bind_contextvars(admin=True)
