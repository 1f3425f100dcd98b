"""Serving the API with server limits (DESIGN.md §4):

- request line and headers must arrive within ``TASKGATE_HEADER_READ_TIMEOUT_S``: aiohttp's
  keep-alive timer is armed when a connection opens and after each response, and closes a
  connection still waiting for a complete request when it fires; the body has its own timeout
  (``TASKGATE_BODY_READ_TIMEOUT_S``, answered 408 by ``api/requests.read_body``);
- at most ``TASKGATE_MAX_CONNECTIONS`` open connections per process: the next one is answered 503
  in the envelope and closed before anything is read;
- aiohttp's own parser errors (bad request line, bad header) are answered in the envelope, naming
  the problem but never quoting the offending bytes (they may hold an API key), and logged as one
  info line."""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from taskgate.settings import Settings

log = structlog.get_logger("taskgate.api")
MAX_LINE_BYTES = 8190  # request line and each header line (aiohttp's default, stated here)


def _envelope(status: int, message: str, detail: Any = None) -> bytes:
    return json.dumps({"code": status, "data": None, "message": message, "detail": detail}).encode()


class ApiRequestHandler(RequestHandler):
    """aiohttp's connection handler, with errors it answers itself rendered in the envelope."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; the connection is dropped")
        try:
            phrase = HTTPStatus(status).phrase.lower()
        except ValueError:
            phrase = "error"
        reason = exc.__class__.__name__ if exc is not None else phrase
        if status >= 500:
            log.error("request_failed_in_server", status=status, error=reason)
        else:
            log.info("bad_http_request", status=status, error=reason)
        resp = web.Response(
            status=status, body=_envelope(status, phrase, {"error": reason}), content_type="application/json"
        )
        resp.force_close()
        return resp


class LimitedServer(web.Server):
    """aiohttp's low-level server with a cap on open connections and our connection handler."""

    max_connections = 1024

    def __call__(self) -> RequestHandler:
        return ApiRequestHandler(self, loop=self._loop, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        if len(self._connections) > self.max_connections:
            body = _envelope(503, "too many connections", {"max_connections": self.max_connections})
            head = (
                f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
            )
            transport.write(head.encode() + body)
            log.warning("connection_refused", reason="max_connections", limit=self.max_connections)
            handler.force_close()


class ApiRunner(web.AppRunner):
    """``web.AppRunner`` serving through ``LimitedServer`` with the settings' limits."""

    def __init__(self, app: web.Application, settings: Settings, **kwargs: Any) -> None:
        kwargs.setdefault("access_log", None)
        super().__init__(
            app,
            keepalive_timeout=settings.header_read_timeout_s,
            max_line_size=MAX_LINE_BYTES,
            max_field_size=MAX_LINE_BYTES,
            **kwargs,
        )
        self.max_connections = settings.max_connections

    async def _make_server(self) -> web.Server:
        base = await super()._make_server()  # runs the app's startup; the same arguments, our class
        server = LimitedServer(
            base.request_handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            loop=base._loop,
            **base._kwargs,
        )
        server.max_connections = self.max_connections
        return server


async def start_api(app: web.Application, settings: Settings, host: str, port: int) -> ApiRunner:
    """Serve ``app`` on ``host:port`` with the limits; the caller cleans the runner up."""
    runner = ApiRunner(app, settings)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner
