"""Standard Webhooks signatures: ``v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>``.

The secret is the task's ``webhook_config.secret``: a ``whsec_<base64>`` secret is decoded as the
specification says; any other string is used as its UTF-8 bytes (GoAPI's secrets are plain
strings). A receiver using the reference library passes ``"whsec_" + base64(secret)`` then."""

from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX = "whsec_"
TOLERANCE_S = 300


class InvalidSignature(Exception):
    pass


def secret_bytes(secret: str) -> bytes:
    if secret.startswith(PREFIX):
        return base64.b64decode(secret[len(PREFIX) :])
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret_bytes(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify(
    secret: str,
    msg_id: str,
    timestamp: int,
    body: bytes,
    signature_header: str,
    *,
    now: int,
    tolerance_s: int = TOLERANCE_S,
) -> None:
    """Raise InvalidSignature unless one of the header's signatures matches and the time is fresh."""
    if abs(now - timestamp) > tolerance_s:
        raise InvalidSignature("timestamp outside the tolerance")
    expected = sign(secret, msg_id, timestamp, body)
    for candidate in signature_header.split():
        if hmac.compare_digest(candidate, expected):
            return
    raise InvalidSignature("no matching signature")
