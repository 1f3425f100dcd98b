"""Who is calling: customers by ``x-api-key`` (DESIGN.md §4) or ``Authorization: Bearer``, operators by
``x-admin-token``."""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict

import structlog
from aiohttp import web

from taskgate.api.state import SERVICES
from taskgate.errors import Unauthorized
from taskgate.settings import Settings
from taskgate.users.service import UserRecord, key_digest

API_KEY_HEADER = "x-api-key"
ADMIN_TOKEN_HEADER = "x-admin-token"

# The settings this app was built with (body limit, admin token, page size); they may differ from
# the settings the shared services were built with (tests, ``taskgate dev``).
APP_SETTINGS = web.AppKey("settings", Settings)
KEY_CACHE_ENTRIES = 10_000


class KeyCache:
    """API key digest -> its user, each entry for ``ttl_s`` (the least recently used go first past
    ``max_entries``). Only for callers whose Redis step re-checks the key (``create_task.lua``):
    the cache saves the lookup, it never decides who may write."""

    def __init__(self, ttl_s: float, max_entries: int = KEY_CACHE_ENTRIES) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: OrderedDict[str, tuple[float, UserRecord]] = OrderedDict()

    def get(self, digest: str) -> UserRecord | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return entry[1]

    def put(self, digest: str, user: UserRecord) -> None:
        if self.ttl_s <= 0:
            return
        self._entries[digest] = (time.monotonic() + self.ttl_s, user)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def drop(self, digest: str) -> None:
        self._entries.pop(digest, None)


KEY_CACHE = web.AppKey("key_cache", KeyCache)


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


async def cached_user(request: web.Request, *, fresh: bool = False) -> tuple[str, UserRecord]:
    """The caller's key digest and user, from the app's KeyCache when it has them (``fresh``: from
    Redis); only for handlers whose script re-checks the key. Binds ``user_id`` to the log context."""
    digest = key_digest(api_key_of(request))
    cache = request.app[KEY_CACHE]
    user = None if fresh else cache.get(digest)
    if user is None:
        user = await request.app[SERVICES].users.authenticate_digest(digest)
        cache.put(digest, user)
    structlog.contextvars.bind_contextvars(user_id=user.user_id)
    return digest, user


def require_admin(request: web.Request) -> None:
    """Constant-time check of ``x-admin-token``; an empty configured token disables the admin API."""
    expected = request.app[APP_SETTINGS].admin_token.get_secret_value()
    if not expected:
        raise Unauthorized("the admin API is disabled: set TASKGATE_ADMIN_TOKEN to enable it")
    given = _header(request, ADMIN_TOKEN_HEADER)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("missing or invalid admin token (header x-admin-token)")
    structlog.contextvars.bind_contextvars(admin=True)
