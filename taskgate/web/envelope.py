"""The §4 response envelope: ``{"code", "data", "message"}``, errors in the same shape.

Encoded with orjson (several times faster than ``json`` on the hot paths); a value orjson refuses
(an integer beyond 64 bits, a lone surrogate, a non-string key) falls back to ``json``."""

from __future__ import annotations

import json
from typing import Any

import orjson
from aiohttp import web


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value).encode()


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(value), status=status, content_type="application/json", charset="utf-8")


def ok(data: Any) -> web.Response:
    return json_response({"code": 200, "data": data, "message": "success"})


def error(status: int, message: str, detail: Any = None) -> web.Response:
    return json_response({"code": status, "data": None, "message": message, "detail": detail}, status=status)
