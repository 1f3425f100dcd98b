from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import pytest
from pydantic import SecretStr

from taskgate.providers import build_provider
from taskgate.providers.base import (
    ACCOUNT_PROBLEMS,
    AccountAccess,
    ErrorKind,
    ProviderError,
    kind_from_http,
    kind_from_message,
    parse_retry_after,
    scrub,
)
from taskgate.providers.goapi import GoapiProvider
from taskgate.providers.sim import SimProvider

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("Wed, 01 Jan 2025 12:00:30 GMT", 30.0),
        ("Wed, 01 Jan 2025 11:59:00 GMT", 0.0),  # in the past
        (None, None),
        ("", None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (429, "", ErrorKind.RATE_LIMITED),
        (500, "", ErrorKind.TRANSIENT),
        (502, "captcha", ErrorKind.TRANSIENT),
        (503, "", ErrorKind.TRANSIENT),
        (402, "", ErrorKind.QUOTA),
        (402, "fast hours used up", ErrorKind.FAST_HOURS),
        (401, "", ErrorKind.CREDENTIALS),  # S10: a rejected key is not a ban
        (401, "Invalid API key", ErrorKind.CREDENTIALS),
        (401, "key revoked", ErrorKind.CREDENTIALS),
        (401, "account suspended", ErrorKind.BANNED),  # what the upstream calls a ban stays one
        (403, "account banned", ErrorKind.BANNED),
        (403, "please solve the captcha", ErrorKind.CAPTCHA),
        (403, "", ErrorKind.CREDENTIALS),
        (403, "Banned Prompt: nsfw", ErrorKind.INCORRECT),
        (400, "", ErrorKind.INCORRECT),
        (400, "invalid aspect ratio", ErrorKind.INCORRECT),
        (400, "insufficient quota", ErrorKind.QUOTA),
        (422, "", ErrorKind.INCORRECT),
        (404, "", ErrorKind.TRANSIENT),
    ],
)
def test_kind_from_http(status: int, message: str, kind: ErrorKind) -> None:
    assert kind_from_http(status, message) == kind


def test_kind_from_message() -> None:
    assert kind_from_message("Banned Prompt detected") == ErrorKind.INCORRECT
    assert kind_from_message("your account was suspended") == ErrorKind.BANNED
    assert kind_from_message("Fast hours exhausted") == ErrorKind.FAST_HOURS
    assert kind_from_message("all good") is None


def test_account_problems() -> None:
    assert ErrorKind.INCORRECT not in ACCOUNT_PROBLEMS and ErrorKind.TRANSIENT not in ACCOUNT_PROBLEMS
    assert {
        ErrorKind.CAPTCHA,
        ErrorKind.BANNED,
        ErrorKind.CREDENTIALS,
        ErrorKind.QUOTA,
        ErrorKind.FAST_HOURS,
        ErrorKind.RATE_LIMITED,
    } == ACCOUNT_PROBLEMS


def test_access_repr_hides_the_key() -> None:
    access = AccountAccess("a1", "sim", "http://x", SecretStr("sk-very-secret"))
    assert "sk-very-secret" not in repr(access) and "sk-very-secret" not in str(access)
    assert access.api_key.get_secret_value() == "sk-very-secret"


def test_scrub_removes_the_key_and_bounds_length() -> None:
    access = AccountAccess("a1", "sim", "http://x", SecretStr("sk-very-secret"))
    assert scrub("bad key sk-very-secret!", access) == "bad key ***!"
    assert len(scrub("x" * 5000, access)) == 500


def test_provider_error_fields_and_repr() -> None:
    exc = ProviderError(ErrorKind.RATE_LIMITED, "slow down", retry_after_s=3.0, raw="{}")
    assert (exc.kind, str(exc), exc.retry_after_s) == (ErrorKind.RATE_LIMITED, "slow down", 3.0)
    assert exc.raw == "{}"
    assert repr(exc) == "ProviderError(kind='rate_limited', message='slow down', retry_after_s=3.0)"


async def test_build_provider() -> None:
    async with aiohttp.ClientSession() as session:
        assert isinstance(build_provider("sim", session, 1.0), SimProvider)
        assert isinstance(build_provider("goapi", session, 1.0), GoapiProvider)
        with pytest.raises(ValueError, match="unknown provider"):
            build_provider("midjourney-direct", session, 1.0)
