"""For webhook receivers: verify a taskgate delivery and get its task.

from taskgate.webhooks.receiver import verify_request
task = verify_request(request.headers, await request.read(), secret)["data"]
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from taskgate.webhooks.signing import InvalidSignature, verify


def verify_request(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    now: int | None = None,
) -> dict[str, Any]:
    """The delivery's JSON (``{"timestamp", "data"}``); raises InvalidSignature when forged or stale."""
    try:
        msg_id, ts = headers["webhook-id"], int(headers["webhook-timestamp"])
        signature = headers["webhook-signature"]
    except (KeyError, ValueError) as exc:
        raise InvalidSignature("missing or malformed webhook-* headers") from exc
    verify(secret, msg_id, ts, body, signature, now=int(time.time()) if now is None else now)
    payload: dict[str, Any] = json.loads(body)
    return payload


def receiver_handler(
    secret: str,
    on_task: Callable[[dict[str, Any]], Awaitable[None]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler: 400 for a body that cannot be read, 401 for a bad signature, else
    ``await on_task(task)`` and 200."""

    async def handle(request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except (web.RequestPayloadError, HttpProcessingError):  # e.g. a lying Content-Encoding
            return web.json_response({"error": "unreadable request body"}, status=400)
        try:
            payload = verify_request(request.headers, body, secret)
        except InvalidSignature as exc:
            return web.json_response({"error": str(exc)}, status=401)
        except ValueError:  # signed by the secret's holder, yet not JSON
            return web.json_response({"error": "the body is not JSON"}, status=400)
        await on_task(payload["data"])
        return web.json_response({"ok": True})

    return handle
