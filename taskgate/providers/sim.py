"""Adapter for ``taskgate upstream-sim`` (wire format in ``taskgate/sim/server.py``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

from taskgate.providers.base import (
    AccountAccess,
    ErrorKind,
    HttpAnswer,
    JsonTransport,
    ProviderError,
    UpstreamRequest,
    UpstreamState,
    UpstreamStatus,
    kind_from_http,
    scrub,
)

STATES = {
    "pending": UpstreamState.PENDING,
    "running": UpstreamState.RUNNING,
    "completed": UpstreamState.COMPLETED,
    "failed": UpstreamState.FAILED,
}


class SimProvider:
    def __init__(self, session: aiohttp.ClientSession, timeout_s: float) -> None:
        self.http = JsonTransport(session, timeout_s)

    async def submit(self, access: AccountAccess, request: UpstreamRequest) -> str:
        body = {
            "model": request.model,
            "task_type": request.task_type,
            "mode": request.mode,
            "input": request.input,
            "idempotency_key": request.idempotency_key,
        }
        if request.callback_url:
            body["callback_url"] = request.callback_url
        answer = await self.http.call("POST", _url(access, "/v1/jobs"), access, json_body=body)
        data = _ok_body(answer, access)
        upstream_id = data.get("id")
        if not isinstance(upstream_id, str) or not upstream_id:
            raise ProviderError(ErrorKind.TRANSIENT, "upstream submit answer has no id", raw=answer.text)
        return upstream_id

    async def poll(self, access: AccountAccess, upstream_id: str) -> UpstreamStatus:
        answer = await self.http.call("GET", _url(access, _job_path(upstream_id)), access)
        data = _ok_body(answer, access)
        state = STATES.get(str(data.get("status")))
        if state is None:
            raise ProviderError(ErrorKind.TRANSIENT, "unknown upstream job status", raw=answer.text)
        progress = data.get("progress")
        progress = max(0, min(100, progress)) if isinstance(progress, int) else 0
        output = data.get("output") if isinstance(data.get("output"), dict) else None
        error = _job_error(data.get("error"), access) if state == UpstreamState.FAILED else None
        return UpstreamStatus(state=state, progress=progress, output=output, error=error)

    async def cancel(self, access: AccountAccess, upstream_id: str) -> bool:
        answer = await self.http.call("POST", _url(access, _job_path(upstream_id, "/cancel")), access)
        if answer.status == 404:
            return False
        return bool(_ok_body(answer, access).get("cancelled"))

    async def probe(self, access: AccountAccess) -> None:
        _ok_body(await self.http.call("GET", _url(access, "/v1/health"), access), access)


def _url(access: AccountAccess, path: str) -> str:
    return access.base_url.rstrip("/") + path


def _job_path(upstream_id: str, suffix: str = "") -> str:
    return f"/v1/jobs/{quote(upstream_id, safe='')}{suffix}"


def _ok_body(answer: HttpAnswer, access: AccountAccess) -> dict[str, Any]:
    """The JSON object of a 2xx answer; anything else raised as a classified ``ProviderError``."""
    if 200 <= answer.status < 300 and isinstance(answer.body, dict):
        return answer.body
    if 200 <= answer.status < 300:
        raise ProviderError(
            ErrorKind.TRANSIENT, "upstream answered with a body that is not a JSON object", raw=answer.text
        )
    error = answer.body.get("error") if isinstance(answer.body, dict) else None
    kind, message = _kind_and_message(error, answer.status, access)
    retry_after = answer.retry_after_s
    exact = error.get("retry_after_s") if isinstance(error, dict) else None
    if retry_after is None and isinstance(exact, int | float):
        retry_after = float(exact)
    raise ProviderError(
        kind, f"upstream refused ({answer.status}): {message}", retry_after_s=retry_after, raw=answer.text
    )


def _kind_and_message(error: Any, status: int, access: AccountAccess) -> tuple[ErrorKind, str]:
    """The sim names the kind itself; unknown kinds fall back to the HTTP status and message."""
    if not isinstance(error, dict):
        return kind_from_http(status), f"HTTP {status}"
    message = scrub(str(error.get("message") or ""), access) or f"HTTP {status}"
    try:
        return ErrorKind(str(error.get("kind"))), message
    except ValueError:
        return kind_from_http(status, message), message


def _job_error(error: Any, access: AccountAccess) -> ProviderError:
    if not isinstance(error, dict):
        return ProviderError(ErrorKind.TRANSIENT, "upstream job failed without an error")
    kind, message = _kind_and_message(error, 500, access)
    return ProviderError(kind, message, raw=message)
