"""Typed errors. The API maps every ``TaskgateError`` to an HTTP status and the §4 envelope in one
place (``api/middleware.py``); Lua scripts return negative ``ScriptErrorCode`` values that
``error_from_script`` maps to these exceptions (a not-found reply ``{-1, entity, id}`` names what
was missing: task, user, account, api key, ...)."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class TaskgateError(Exception):
    """Base of every error that reaches a customer. ``status`` is the HTTP status."""

    status: int = 500
    message: str = "internal error"

    def __init__(self, message: str | None = None, *, detail: Any = None) -> None:
        self.message = message or self.message
        self.detail = detail
        super().__init__(self.message)


class InvalidInput(TaskgateError):
    status = 400

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid {field}: {reason}", detail={"field": field, "reason": reason})


class Unauthorized(TaskgateError):
    status = 401
    message = "missing or invalid API key"


class InsufficientCredits(TaskgateError):
    status = 402

    def __init__(self, unit: str, needed: int, available: int) -> None:
        self.unit, self.needed, self.available = unit, needed, available
        super().__init__(
            f"not enough {unit}: this task needs {needed}, available {available}",
            detail={"unit": unit, "needed": needed, "available": available},
        )


class NotFound(TaskgateError):
    status = 404

    def __init__(self, what: str = "task", ident: str = "") -> None:
        self.what, self.ident = what, ident
        super().__init__(f"{what} not found" + (f": {ident}" if ident else ""))


class Conflict(TaskgateError):
    status = 409


class UserChanged(Conflict):
    """The user's plan or settings changed while a create was priced with the old ones."""

    message = "the account changed while the task was being created; retry"


class RequestTimeout(TaskgateError):
    status = 408

    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            f"the request body was not received within {timeout_s:g} s", detail={"timeout_s": timeout_s}
        )


class BodyTooLarge(TaskgateError):
    status = 413
    message = "request body too large"


class TooManyRequests(TaskgateError):
    status = 429


class IncorrectTaskLimit(TooManyRequests):
    def __init__(self, limit: int, until: str) -> None:
        super().__init__(
            f"daily limit of {limit} incorrect tasks reached: no more pay-per-use tasks until {until}",
            detail={"limit": limit, "until": until},
        )


class StaleAttempt(TaskgateError):
    """A worker acted for an attempt that is no longer current (fencing)."""

    status = 409
    message = "stale attempt"


class AlreadyFinal(Conflict):
    """The task already ended; a second finish changes nothing (B4)."""

    def __init__(self, status: str = "") -> None:
        super().__init__(f"task already ended ({status})" if status else "task already ended")


class Unavailable(TaskgateError):
    """Redis cannot take the request now (unreachable, a failover): the client may retry."""

    status = 503
    retry_after_s = 1
    message = "temporarily unavailable: the task store is failing over or unreachable; retry"


class RedisUnavailable(Unavailable):
    def __init__(self, reason: str = "") -> None:
        message = f"{Unavailable.message} ({reason})" if reason else None
        super().__init__(message, detail={"reason": reason, "retry_after_s": self.retry_after_s})


class NotDurable(Unavailable):
    """The write reached the master but WAIT did not see enough replicas take it in time."""

    def __init__(self, acked: int, wanted: int) -> None:
        self.acked, self.wanted = acked, wanted
        super().__init__(
            f"not confirmed by {wanted} replica(s) in time ({acked} did); "
            "retry with the same Idempotency-Key",
            detail={"replicas_acked": acked, "replicas_wanted": wanted, "retry_after_s": self.retry_after_s},
        )


class ScriptErrorCode(IntEnum):
    NOT_FOUND = -1
    STALE_ATTEMPT = -2
    INSUFFICIENT = -3
    INCORRECT_BLOCKED = -4
    WRONG_STATE = -5
    ALREADY_FINAL = -6
    BAD_ARGUMENT = -7
    UNAUTHORIZED = -8  # the API key is unknown (revoked, rotated) or its user is gone
    USER_CHANGED = -9  # the user's plan or settings changed since the caller read them


class ScriptError(TaskgateError):
    """A script refused an operation with a code no caller expected."""

    def __init__(self, script: str, code: int, payload: list[Any]) -> None:
        self.script, self.code, self.payload = script, code, payload
        super().__init__(f"{script} refused with code {code}")


def error_from_script(script: str, code: int, payload: list[Any]) -> TaskgateError:
    """The one mapping from Lua error codes to exceptions."""
    match code:
        case ScriptErrorCode.NOT_FOUND:  # {-1, entity, id}: the script names what it did not find
            what = str(payload[0]) if payload else "entity"
            return NotFound(what, str(payload[1]) if len(payload) > 1 else "")
        case ScriptErrorCode.STALE_ATTEMPT:
            return StaleAttempt()
        case ScriptErrorCode.INSUFFICIENT:
            unit, needed, available = payload[0], int(payload[1]), int(payload[2])
            return InsufficientCredits(str(unit), needed, available)
        case ScriptErrorCode.INCORRECT_BLOCKED:
            return IncorrectTaskLimit(int(payload[0]), str(payload[1]))
        case ScriptErrorCode.ALREADY_FINAL:
            return AlreadyFinal(str(payload[0]) if payload else "")
        case ScriptErrorCode.UNAUTHORIZED:
            return Unauthorized()
        case ScriptErrorCode.USER_CHANGED:
            return UserChanged()
        case ScriptErrorCode.WRONG_STATE:
            return Conflict(f"task is {payload[0]}" if payload else "wrong state")
        case _:
            return ScriptError(script, code, payload)
