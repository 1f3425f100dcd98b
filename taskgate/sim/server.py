"""``taskgate upstream-sim``: an HTTP server that behaves like an upstream generation service (§9).

Wire format (JSON bodies; every job route needs header ``x-api-key: <account key>``):

``POST /v1/jobs``  body ``{"model", "task_type", "mode", "input", "idempotency_key"}``
    -> ``200 {"id": "<upstream id>", "created": true|false}``. An optional ``"callback_url"`` gets the
    job POSTed to it when it ends (``sim/callbacks.py``). The same ``idempotency_key`` under the
    same api key returns the same id and never starts a second job (``created`` is false).
``GET /v1/jobs/{id}``
    -> ``200 {"id", "status": "pending|running|completed|failed", "progress": 0-100,
    "output": {...} | null, "error": {"kind", "message"} | null}``. ``output`` has the shape GoAPI
    documents for the job's model and task type (``sim/outputs.py``: ``image_url``/``image_urls``,
    ``video_url``, Kling ``works``, Luma ``video_raw``, Udio ``songs``, Suno ``clips``, ``audio_url``,
    Trellis ``model_file``, ...). Result URLs are ``http://<host the client used>/files/<id>.<ext>``;
    ``GET /files/<name>.png|mp4|mp3|glb`` serves a tiny file of that type (a 1x1 PNG for images).
``POST /v1/jobs/{id}/cancel`` -> ``200 {"cancelled": true|false}`` (false once the job has ended).
``GET /v1/health`` -> ``200 {"status": "ok", "fast_hours_left": float | null}`` or the refusal the
    account's behaviour dictates (the adapter's ``probe``).

Refusals are ``{"error": {"kind", "message"}}`` with ``kind`` one of ``providers.base.ErrorKind`` (or
``not_found``): ``401 credentials_rejected`` no api key (any non-empty key is accepted unless set to
``key_rejected``); ``400 incorrect`` bad body; ``403 banned|captcha|fast_hours``;
``429 rate_limited`` with ``Retry-After`` (whole seconds, rounded up; ``retry_after_s`` in the body is
exact); ``404 not_found`` unknown job (or another key's job).

Operator and test controls (no auth; bind the sim to loopback):

``POST /sim/accounts/{api_key}`` body ``{"captcha": bool, "banned": bool, "key_rejected": bool,
    "rate_limit_s": float,
    "fast_hours_left": float | null}`` (any subset) -> the account's behaviour. ``rate_limit_s`` > 0
    refuses every submit for that many seconds from now; ``fast_hours_left`` <= 0 refuses fast/turbo
    submits (relax still works); fast/turbo jobs use up ``duration / 3600`` hours.
``GET /sim/accounts/{api_key}`` -> the account's behaviour.
``GET /sim/stats`` -> ``submit_requests``, ``jobs_submitted``, ``duplicate_submits``,
    ``duplicate_keys`` ({idempotency key: submits} for keys submitted more than once), ``cancelled``,
    ``refused`` ({kind: n}), ``outcomes`` ({outcome: n}), ``running_now``, ``running_by_key``,
    ``max_concurrent`` ({api key: most jobs running at once}).

Latency by mode: turbo < fast < relax (``Settings.sim_latency_*_s``, +-20 % jitter; unknown modes use
fast); outcomes by ``Settings.sim_*_rate``; both from a ``random.Random`` seeded by ``sim_seed`` /
``TASKGATE_SIM_SEED`` when set. Prompt directives (``sim/directives.py``) override both per task."""

from __future__ import annotations

import math
import os
import re
import struct
import zlib
from functools import cache
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from taskgate.providers.base import ErrorKind
from taskgate.settings import Settings
from taskgate.sim.callbacks import SimCallbacks
from taskgate.sim.state import SimRefused, SimState, SubmitBody

log = structlog.get_logger(__name__)

SIM_STATE = web.AppKey("sim_state", SimState)
SIM_CALLBACKS = web.AppKey("sim_callbacks", SimCallbacks)
FILE_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,80}\.(png|mp4|mp3|glb)$")
# a tiny file per type: a real PNG, and placeholder bytes with the right content type for the others
FILE_TYPES = {"png": "image/png", "mp4": "video/mp4", "mp3": "audio/mpeg", "glb": "model/gltf-binary"}
MAX_TEXT = 200  # longest model / task_type / mode / idempotency key accepted


def create_sim_app(settings: Settings, *, seed: int | None = None) -> web.Application:
    """The simulator as an aiohttp application; ``seed`` defaults to the configured sim seed."""
    app = web.Application()
    app[SIM_STATE] = SimState(settings, seed=seed if seed is not None else sim_seed(settings))
    app[SIM_CALLBACKS] = SimCallbacks()
    app.on_cleanup.append(_close_callbacks)
    app.add_routes(
        [
            web.post("/v1/jobs", submit_job),
            web.get("/v1/jobs/{job_id}", get_job),
            web.post("/v1/jobs/{job_id}/cancel", cancel_job),
            web.get("/v1/health", health),
            web.post("/sim/accounts/{api_key}", configure_account),
            web.get("/sim/accounts/{api_key}", show_account),
            web.get("/sim/stats", stats),
            web.get("/files/{name}", serve_file),
        ]
    )
    return app


async def _close_callbacks(app: web.Application) -> None:
    await app[SIM_CALLBACKS].close()


def sim_seed(settings: Settings) -> int | None:
    """``Settings.sim_seed`` when the settings have it, else ``TASKGATE_SIM_SEED``; junk -> None."""
    value = getattr(settings, "sim_seed", None)
    if value is None:
        value = os.environ.get("TASKGATE_SIM_SEED") or None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def refusal_response(refused: SimRefused) -> web.Response:
    headers = {}
    body: dict[str, Any] = {"kind": str(refused.kind), "message": refused.message}
    if refused.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(refused.retry_after_s)))
        body["retry_after_s"] = round(refused.retry_after_s, 3)
    return web.json_response({"error": body}, status=refused.status, headers=headers)


def _api_key(request: web.Request) -> str:
    key = request.headers.get("x-api-key", "").strip()
    if not key:
        raise SimRefused(401, ErrorKind.CREDENTIALS, "missing x-api-key")
    return key


async def _submit_body(request: web.Request) -> SubmitBody:
    try:
        raw = await request.json()
    except (ValueError, RequestPayloadError) as exc:  # not JSON, or not in its Content-Encoding
        raise SimRefused(400, ErrorKind.INCORRECT, "body is not JSON") from exc
    if not isinstance(raw, dict):
        raise SimRefused(400, ErrorKind.INCORRECT, "body must be a JSON object")
    fields: dict[str, str] = {}
    for name in ("model", "task_type", "idempotency_key"):
        value = raw.get(name)
        if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT:
            raise SimRefused(400, ErrorKind.INCORRECT, f"invalid {name}: a non-empty string is required")
        fields[name] = value
    mode, task_input = raw.get("mode") or "", raw.get("input", {})
    if not isinstance(mode, str) or len(mode) > MAX_TEXT:
        raise SimRefused(400, ErrorKind.INCORRECT, "invalid mode: a string is required")
    if not isinstance(task_input, dict):
        raise SimRefused(400, ErrorKind.INCORRECT, "invalid input: an object is required")
    callback_url = raw.get("callback_url") or ""
    if (
        not isinstance(callback_url, str)
        or len(callback_url) > 2000
        or (callback_url and not callback_url.startswith(("http://", "https://")))
    ):
        raise SimRefused(400, ErrorKind.INCORRECT, "invalid callback_url: an http(s) URL is required")
    return SubmitBody(
        model=fields["model"],
        task_type=fields["task_type"],
        mode=mode.lower(),
        input=task_input,
        idempotency_key=fields["idempotency_key"],
        callback_url=callback_url,
    )


async def submit_job(request: web.Request) -> web.Response:
    state = request.app[SIM_STATE]
    try:
        api_key = _api_key(request)
        body = await _submit_body(request)
        job, created = state.submit(api_key, body)
    except SimRefused as refused:
        log.info("sim_submit_refused", kind=str(refused.kind), status=refused.status)
        return refusal_response(refused)
    if created and body.callback_url:
        request.app[SIM_CALLBACKS].schedule(state, job, body.callback_url, _files_base(request))
    log.info(
        "sim_job_submitted",
        job_id=job.id,
        created=created,
        mode=body.mode,
        model=body.model,
        outcome=str(job.outcome),
        duration_s=round(job.duration_s, 3),
    )
    return web.json_response({"id": job.id, "created": created})


async def get_job(request: web.Request) -> web.Response:
    state = request.app[SIM_STATE]
    try:
        job = state.job(_api_key(request), request.match_info["job_id"])
    except SimRefused as refused:
        return refusal_response(refused)
    return web.json_response(job.view(state.clock(), _files_base(request)))


async def cancel_job(request: web.Request) -> web.Response:
    state = request.app[SIM_STATE]
    try:
        cancelled = state.cancel(_api_key(request), request.match_info["job_id"])
    except SimRefused as refused:
        return refusal_response(refused)
    log.info("sim_job_cancel_requested", job_id=request.match_info["job_id"], cancelled=cancelled)
    return web.json_response({"cancelled": cancelled})


async def health(request: web.Request) -> web.Response:
    state = request.app[SIM_STATE]
    try:
        api_key = _api_key(request)
        state.check_account(api_key)
    except SimRefused as refused:
        return refusal_response(refused)
    return web.json_response({"status": "ok", "fast_hours_left": state.account(api_key).fast_hours_left})


async def configure_account(request: web.Request) -> web.Response:
    try:
        patch = await request.json()
    except (ValueError, RequestPayloadError):
        patch = None
    if not isinstance(patch, dict):
        return refusal_response(SimRefused(400, ErrorKind.INCORRECT, "body must be a JSON object"))
    view = request.app[SIM_STATE].configure(request.match_info["api_key"], patch)
    log.info("sim_account_configured", **view)
    return web.json_response(view)


async def show_account(request: web.Request) -> web.Response:
    state = request.app[SIM_STATE]
    return web.json_response(state.account(request.match_info["api_key"]).view(state.clock()))


async def stats(request: web.Request) -> web.Response:
    return web.json_response({**request.app[SIM_STATE].stats(), **request.app[SIM_CALLBACKS].stats()})


async def serve_file(request: web.Request) -> web.Response:
    match = FILE_NAME.match(request.match_info["name"])
    if not match:
        raise web.HTTPNotFound()
    ext = match[1]
    body = tiny_png() if ext == "png" else f"simulated {ext} file\n".encode()
    return web.Response(body=body, content_type=FILE_TYPES[ext])


def _files_base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


@cache
def tiny_png() -> bytes:
    """A valid 1x1 grey PNG, built once."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)  # 1x1, 8-bit greyscale
    pixels = zlib.compress(b"\x00\x80")  # filter byte 0, one grey pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


async def start_sim(settings: Settings, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve the simulator on ``host:port`` (``port`` 0: a free one); returns the runner and the port."""
    runner = web.AppRunner(create_sim_app(settings))
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    addresses = runner.addresses
    return runner, int(addresses[0][1]) if addresses else port
