"""The §4 response envelope: ``{"code", "data", "message"}``, errors in the same shape."""

from __future__ import annotations

from typing import Any

from aiohttp import web


def ok(data: Any) -> web.Response:
    return web.json_response({"code": 200, "data": data, "message": "success"})


def error(status: int, message: str, detail: Any = None) -> web.Response:
    return web.json_response(
        {"code": status, "data": None, "message": message, "detail": detail}, status=status
    )
