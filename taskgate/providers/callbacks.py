"""Upstream callbacks: the URL an attempt registers with its upstream, and its per-attempt secret.

An attempt of task T registers ``<TASKGATE_CALLBACK_BASE_URL>/callbacks/v1/upstream/T/<attempt>/<token>``
where ``token`` is an HMAC-SHA256 of ``T:<attempt>`` under ``TASKGATE_CALLBACK_SECRET``: any API
replica verifies it without shared state, and it names exactly one attempt (fencing). A verified
callback is only a wake-up: the worker running that attempt polls the upstream at once and acts on
what the poll says, so a forged, replayed, duplicated or stale callback can at most cause one
extra poll, and a lost one is caught by the slow safety poll.

GoAPI-style upstreams (``config.webhook_config``) are given a per-attempt URL without a token,
``<base>/callbacks/v1/goapi/T/<attempt>``, and a per-attempt secret (an HMAC of ``goapi:T:<attempt>``,
distinct from the token) that they send back in the ``x-webhook-secret`` header; their body is
GoAPI's webhook, ``{"timestamp": ..., "data": <task object>}``."""

from __future__ import annotations

import hashlib
import hmac

from taskgate.settings import Settings

ROUTE = "/callbacks/v1/upstream/{task_id}/{attempt}/{token}"
GOAPI_ROUTE = "/callbacks/v1/goapi/{task_id}/{attempt}"
SECRET_HEADER = "x-webhook-secret"  # GoAPI's webhook header: the secret itself
SECRET_HEADER_PROVIDERS = frozenset({"goapi"})  # providers given GOAPI_ROUTE and a secret


def enabled(settings: Settings) -> bool:
    return bool(settings.callback_base_url and settings.callback_secret.get_secret_value())


def token(settings: Settings, task_id: str, attempt: int) -> str:
    return _hmac(settings, f"{task_id}:{attempt}")


def webhook_secret(settings: Settings, task_id: str, attempt: int) -> str:
    """The secret a GoAPI-style upstream sends back in ``x-webhook-secret`` for this attempt."""
    return _hmac(settings, f"goapi:{task_id}:{attempt}")


def _hmac(settings: Settings, message: str) -> str:
    secret = settings.callback_secret.get_secret_value().encode()
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def callback_url(settings: Settings, task_id: str, attempt: int, provider: str = "") -> str:
    """The URL to register for this attempt ("" when callbacks are off): for a provider in
    ``SECRET_HEADER_PROVIDERS`` the GoAPI route (its secret travels apart), else the token route."""
    if not enabled(settings):
        return ""
    if provider in SECRET_HEADER_PROVIDERS:
        path = GOAPI_ROUTE.format(task_id=task_id, attempt=attempt)
    else:
        path = ROUTE.format(task_id=task_id, attempt=attempt, token=token(settings, task_id, attempt))
    return settings.callback_base_url.rstrip("/") + path


def callback_secret(settings: Settings, task_id: str, attempt: int, provider: str) -> str:
    """The per-attempt secret to register beside the URL ("" for token-URL providers or when off)."""
    if not enabled(settings) or provider not in SECRET_HEADER_PROVIDERS:
        return ""
    return webhook_secret(settings, task_id, attempt)


def verify(settings: Settings, task_id: str, attempt: int, given: str) -> bool:
    return enabled(settings) and hmac.compare_digest(given, token(settings, task_id, attempt))


def verify_secret(settings: Settings, task_id: str, attempt: int, given: str) -> bool:
    """A GoAPI-style callback's ``x-webhook-secret`` against this attempt's secret."""
    expected = webhook_secret(settings, task_id, attempt)
    return enabled(settings) and hmac.compare_digest(given.encode(errors="replace"), expected.encode())


def wake_message(task_id: str, attempt: int) -> str:
    """What the API publishes to the workers for a verified callback."""
    return f"{task_id}:{attempt}"
