"""The provider interface workers code against (DESIGN.md §9), and the HTTP error classification
every adapter shares.

An adapter turns an account (``AccountAccess``) and a task (``UpstreamRequest``) into upstream calls:
``submit`` -> upstream id, ``poll`` -> ``UpstreamStatus``, ``cancel``, ``probe``. Failures are raised
as ``ProviderError`` with an ``ErrorKind``; the worker decides from the kind whether the task was
incorrect (B6), the account has a problem (S9) or the call may simply be retried. API keys never
appear in an error's text, ``repr`` or ``raw``: adapters pass upstream text through ``scrub``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Protocol

import aiohttp
from pydantic import SecretStr

RAW_LIMIT = 500  # characters of an upstream body kept on an error
REDACTED = "***"


class ErrorKind(StrEnum):
    INCORRECT = "incorrect"  # the task itself was rejected (banned prompt, invalid parameters): B6
    CAPTCHA = "captcha"
    BANNED = "banned"  # the upstream says the account is banned or suspended
    CREDENTIALS = "credentials_rejected"  # 401/403: the key is wrong or revoked (an operator fixes it)
    QUOTA = "quota"  # the account's credits/quota are exhausted
    FAST_HOURS = "fast_hours"  # fast/turbo time exhausted; relax still works
    RATE_LIMITED = "rate_limited"
    TRANSIENT = "transient"  # 5xx, connection errors, timeouts: try again


ACCOUNT_PROBLEMS = frozenset(
    {
        ErrorKind.CAPTCHA,
        ErrorKind.BANNED,
        ErrorKind.CREDENTIALS,
        ErrorKind.QUOTA,
        ErrorKind.FAST_HOURS,
        ErrorKind.RATE_LIMITED,
    }
)


class ProviderError(Exception):
    """A classified upstream failure. ``str()`` is the (scrubbed) message."""

    def __init__(
        self, kind: ErrorKind, message: str, *, retry_after_s: float | None = None, raw: str = ""
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after_s = retry_after_s
        self.raw = raw

    def __repr__(self) -> str:
        return (
            f"ProviderError(kind={self.kind.value!r}, message={self.message!r}, "
            f"retry_after_s={self.retry_after_s!r})"
        )


@dataclass(frozen=True)
class AccountAccess:
    """What a worker needs to call an upstream as one account. ``api_key`` is a ``SecretStr``, so
    ``repr`` and logs show ``**********``; only adapters call ``get_secret_value()``."""

    account_id: str
    provider: str
    base_url: str
    api_key: SecretStr


class UpstreamState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


UPSTREAM_TERMINAL = frozenset({UpstreamState.COMPLETED, UpstreamState.FAILED})


@dataclass(frozen=True)
class UpstreamStatus:
    state: UpstreamState
    progress: int = 0
    output: dict[str, Any] | None = None
    error: ProviderError | None = None


@dataclass(frozen=True)
class UpstreamRequest:
    model: str
    task_type: str
    mode: str  # turbo | fast | relax (the task's lane)
    input: dict[str, Any]
    idempotency_key: str  # the task id: a re-submit after a crash returns the same upstream job
    callback_url: str = ""  # where the upstream may notify completion (providers/callbacks.py); "" none
    callback_secret: str = ""  # sent back by GoAPI-style upstreams in x-webhook-secret; "" none


class Provider(Protocol):
    async def submit(self, access: AccountAccess, request: UpstreamRequest) -> str: ...

    async def poll(self, access: AccountAccess, upstream_id: str) -> UpstreamStatus: ...

    async def cancel(self, access: AccountAccess, upstream_id: str) -> bool: ...

    async def probe(self, access: AccountAccess) -> None: ...


# --- shared classification -------------------------------------------------------------------

# (substring of a lower-cased upstream message, kind); first match wins
MESSAGE_HINTS: tuple[tuple[str, ErrorKind], ...] = (
    ("banned prompt", ErrorKind.INCORRECT),  # Midjourney's "Banned Prompt": the task, not the account
    ("banned word", ErrorKind.INCORRECT),
    ("banned keyword", ErrorKind.INCORRECT),
    ("banned image", ErrorKind.INCORRECT),
    ("invalid api key", ErrorKind.CREDENTIALS),
    ("invalid key", ErrorKind.CREDENTIALS),
    ("x-api-key", ErrorKind.CREDENTIALS),
    ("unauthorized", ErrorKind.CREDENTIALS),
    ("captcha", ErrorKind.CAPTCHA),
    ("banned", ErrorKind.BANNED),
    ("suspended", ErrorKind.BANNED),
    ("revoked", ErrorKind.CREDENTIALS),
    ("fast hour", ErrorKind.FAST_HOURS),
    ("fast_hour", ErrorKind.FAST_HOURS),
    ("insufficient", ErrorKind.QUOTA),
    ("quota", ErrorKind.QUOTA),
    ("credits", ErrorKind.QUOTA),
    ("rate limit", ErrorKind.RATE_LIMITED),
    ("too many requests", ErrorKind.RATE_LIMITED),
    ("invalid", ErrorKind.INCORRECT),
    ("incorrect", ErrorKind.INCORRECT),
    ("filtered", ErrorKind.INCORRECT),
    ("moderation", ErrorKind.INCORRECT),
)


def kind_from_message(message: str) -> ErrorKind | None:
    text = message.lower()
    for needle, kind in MESSAGE_HINTS:
        if needle in text:
            return kind
    return None


def kind_from_http(status: int, message: str = "") -> ErrorKind:
    """Classify a non-2xx answer: the status first, refined by the upstream's message."""
    hinted = kind_from_message(message)
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status >= 500:
        return ErrorKind.TRANSIENT
    if status == 402:
        return hinted if hinted in (ErrorKind.FAST_HOURS, ErrorKind.QUOTA) else ErrorKind.QUOTA
    if status == 401:  # the key is wrong or revoked (S10), unless the upstream names a ban etc.
        return hinted if hinted in ACCOUNT_PROBLEMS else ErrorKind.CREDENTIALS
    if status == 403:
        return hinted or ErrorKind.CREDENTIALS
    if status in (400, 422):
        return hinted if hinted in ACCOUNT_PROBLEMS else ErrorKind.INCORRECT
    return hinted or ErrorKind.TRANSIENT


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds (decimals tolerated) or an HTTP date; junk -> None."""
    if not value:
        return None
    value = value.strip()
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until_date(value, now)
    if seconds is None or not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def _seconds_until_date(value: str, now: datetime | None) -> float | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - (now or datetime.now(tz=UTC))).total_seconds()


def scrub(text: str, access: AccountAccess, limit: int = RAW_LIMIT) -> str:
    """Upstream text made safe to keep: the account's key removed, length bounded."""
    secret = access.api_key.get_secret_value()
    if secret:
        text = text.replace(secret, REDACTED)
    return text[:limit]


# --- shared transport ------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: Any  # parsed JSON, or None when the body was not JSON
    text: str  # scrubbed, bounded raw body
    retry_after_s: float | None


class JsonTransport:
    """One JSON-over-HTTP call with a timeout; transport failures become ``TRANSIENT``."""

    def __init__(self, session: aiohttp.ClientSession, timeout_s: float) -> None:
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def call(
        self,
        method: str,
        url: str,
        access: AccountAccess,
        *,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> HttpAnswer:
        all_headers = {"x-api-key": access.api_key.get_secret_value(), "accept": "application/json"}
        all_headers.update(headers or {})
        try:
            async with self.session.request(
                method, url, json=json_body, headers=all_headers, timeout=self.timeout
            ) as resp:
                text = await resp.text(errors="replace")
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                status = resp.status
        except TimeoutError as exc:
            raise ProviderError(ErrorKind.TRANSIENT, f"upstream timed out: {method} {url}") from exc
        except aiohttp.ClientError as exc:
            message = scrub(f"upstream unreachable: {type(exc).__name__}: {exc}", access)
            raise ProviderError(ErrorKind.TRANSIENT, message) from exc
        return HttpAnswer(status, _json_or_none(text), scrub(text, access), retry_after)


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
