"""Adapter for GoAPI's unified task API (and anything that speaks it, such as another taskgate).

Wire format (DESIGN.md §4): header ``x-api-key``; every answer is the envelope
``{"code": int, "data": ..., "message": str}`` with ``code`` 200 on success.

- submit: ``POST {base}/api/v1/task`` body ``{"model", "task_type", "input", "config"}`` plus header
  ``Idempotency-Key: <task id>`` (honoured by taskgate; harmless elsewhere) -> ``data.task_id``.
  Midjourney's mode travels as ``input.process_mode``; it is filled from the task's lane when absent.
  With upstream callbacks on, ``config.webhook_config`` = ``{"endpoint": <this attempt's callback
  URL>, "secret": <this attempt's secret>}`` (taskgate/providers/callbacks.py); polling stays the fallback.
- poll: ``GET {base}/api/v1/task/{id}`` -> ``data.status`` (``pending|staged|processing|completed|
  failed``, capitalised legacy values too), ``data.output`` (with ``progress``), ``data.error{code,
  message, raw_message}``.
- cancel: ``POST {base}/api/v1/task/{id}/cancel``.
- probe: ``GET {base}/api/v1/account``.

HTTP errors: 402 -> quota, 429 -> rate limited (``Retry-After`` honoured), 401/403 -> credentials rejected,
400 -> incorrect, 5xx -> transient; the upstream's message refines 403 and failed tasks
(captcha, banned, fast hours, banned prompt, ...)."""

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
    kind_from_message,
    scrub,
)

SUCCESS_CODES = frozenset({0, 200})
MODE_MODELS = frozenset({"midjourney"})  # models whose mode is ``input.process_mode``
STATES = {
    "pending": UpstreamState.PENDING,
    "staged": UpstreamState.PENDING,
    "processing": UpstreamState.RUNNING,
    "running": UpstreamState.RUNNING,
    "completed": UpstreamState.COMPLETED,
    "success": UpstreamState.COMPLETED,
    "failed": UpstreamState.FAILED,
}


class GoapiProvider:
    def __init__(self, session: aiohttp.ClientSession, timeout_s: float) -> None:
        self.http = JsonTransport(session, timeout_s)

    async def submit(self, access: AccountAccess, request: UpstreamRequest) -> str:
        task_input = dict(request.input)
        if request.model in MODE_MODELS and request.mode and "process_mode" not in task_input:
            task_input["process_mode"] = request.mode
        config: dict[str, Any] = {"service_mode": ""}
        if request.callback_url:  # GoAPI posts {"timestamp", "data": <task>} here as the job changes
            config["webhook_config"] = {"endpoint": request.callback_url, "secret": request.callback_secret}
        body = {
            "model": request.model,
            "task_type": request.task_type,
            "input": task_input,
            "config": config,
        }
        answer = await self.http.call(
            "POST",
            _url(access, "/api/v1/task"),
            access,
            json_body=body,
            headers={"Idempotency-Key": request.idempotency_key},
        )
        data = _data(answer, access)
        task_id = data.get("task_id") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError(
                ErrorKind.TRANSIENT, "upstream answered a submit without data.task_id", raw=answer.text
            )
        return task_id

    async def poll(self, access: AccountAccess, upstream_id: str) -> UpstreamStatus:
        answer = await self.http.call("GET", _url(access, _task_path(upstream_id)), access)
        data = _data(answer, access)
        if not isinstance(data, dict):
            raise ProviderError(ErrorKind.TRANSIENT, "upstream answered a task without data", raw=answer.text)
        state = STATES.get(str(data.get("status", "")).strip().lower())
        if state is None:
            raise ProviderError(ErrorKind.TRANSIENT, "unknown upstream task status", raw=answer.text)
        output = data.get("output") if isinstance(data.get("output"), dict) else None
        if state == UpstreamState.FAILED:
            return UpstreamStatus(
                state=state,
                progress=_progress(output, state),
                output=output,
                error=_task_error(data.get("error"), access),
            )
        return UpstreamStatus(state=state, progress=_progress(output, state), output=output)

    async def cancel(self, access: AccountAccess, upstream_id: str) -> bool:
        answer = await self.http.call("POST", _url(access, _task_path(upstream_id, "/cancel")), access)
        try:
            _data(answer, access)
        except ProviderError as exc:
            if exc.kind == ErrorKind.INCORRECT or answer.status == 404:
                return False  # unknown or no longer cancellable
            raise
        return True

    async def probe(self, access: AccountAccess) -> None:
        _data(await self.http.call("GET", _url(access, "/api/v1/account"), access), access)


def _url(access: AccountAccess, path: str) -> str:
    return access.base_url.rstrip("/") + path


def _task_path(task_id: str, suffix: str = "") -> str:
    return f"/api/v1/task/{quote(task_id, safe='')}{suffix}"


def _data(answer: HttpAnswer, access: AccountAccess) -> Any:
    """``data`` of a successful envelope; otherwise a classified ``ProviderError``."""
    body = answer.body if isinstance(answer.body, dict) else {}
    code = body.get("code")
    ok_http = 200 <= answer.status < 300
    if ok_http and isinstance(code, int) and code in SUCCESS_CODES:
        return body.get("data")
    if ok_http and not body:
        raise ProviderError(ErrorKind.TRANSIENT, "upstream answered without a JSON envelope", raw=answer.text)
    status = answer.status if not ok_http else (code if isinstance(code, int) and 400 <= code < 600 else 500)
    message = _message(body, access) or f"HTTP {answer.status}"
    raise ProviderError(
        kind_from_http(status, message),
        f"upstream refused ({status}): {message}",
        retry_after_s=answer.retry_after_s,
        raw=answer.text,
    )


def _message(body: dict[str, Any], access: AccountAccess) -> str:
    parts = [body.get("message"), body.get("detail")]
    data = body.get("data")
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        parts += [data["error"].get("message"), data["error"].get("raw_message")]
    if isinstance(body.get("error"), dict):
        parts += [body["error"].get("message")]
    elif isinstance(body.get("error"), str):
        parts.append(body["error"])
    text = "; ".join(str(p) for p in parts if p and str(p).lower() != "success")
    return scrub(text, access)


def _task_error(error: Any, access: AccountAccess) -> ProviderError:
    if not isinstance(error, dict):
        return ProviderError(ErrorKind.TRANSIENT, "upstream task failed without an error")
    message = scrub(str(error.get("message") or ""), access)
    raw = scrub(str(error.get("raw_message") or ""), access)
    code = error.get("code")
    kind = kind_from_message(f"{message} {raw}")
    if kind is None:
        kind = kind_from_http(code) if isinstance(code, int) and 400 <= code < 600 else ErrorKind.TRANSIENT
    return ProviderError(kind, message or raw or "upstream task failed", raw=raw or message)


def _progress(output: dict[str, Any] | None, state: UpstreamState) -> int:
    if state == UpstreamState.COMPLETED:
        return 100
    value = output.get("progress") if output else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(0, min(100, int(value)))
    return 0
