"""Upstream callbacks: the URL an attempt registers with its upstream, and its per-attempt secret.

An attempt of task T registers ``<TASKGATE_CALLBACK_BASE_URL>/callbacks/v1/upstream/T/<attempt>/<token>``
where ``token`` is an HMAC-SHA256 of ``T:<attempt>`` under ``TASKGATE_CALLBACK_SECRET``: any API
replica verifies it without shared state, and it names exactly one attempt (fencing). A verified
callback is only a wake-up: the worker running that attempt polls the upstream at once and acts on
what the poll says, so a forged, replayed, duplicated or stale callback can at most cause one
extra poll, and a lost one is caught by the slow safety poll."""

from __future__ import annotations

import hashlib
import hmac

from taskgate.settings import Settings

ROUTE = "/callbacks/v1/upstream/{task_id}/{attempt}/{token}"


def enabled(settings: Settings) -> bool:
    return bool(settings.callback_base_url and settings.callback_secret.get_secret_value())


def token(settings: Settings, task_id: str, attempt: int) -> str:
    secret = settings.callback_secret.get_secret_value().encode()
    return hmac.new(secret, f"{task_id}:{attempt}".encode(), hashlib.sha256).hexdigest()


def callback_url(settings: Settings, task_id: str, attempt: int) -> str:
    """The URL to register for this attempt; "" when callbacks are off."""
    if not enabled(settings):
        return ""
    path = ROUTE.format(task_id=task_id, attempt=attempt, token=token(settings, task_id, attempt))
    return settings.callback_base_url.rstrip("/") + path


def verify(settings: Settings, task_id: str, attempt: int, given: str) -> bool:
    return enabled(settings) and hmac.compare_digest(given, token(settings, task_id, attempt))


def wake_message(task_id: str, attempt: int) -> str:
    """What the API publishes to the workers for a verified callback."""
    return f"{task_id}:{attempt}"
