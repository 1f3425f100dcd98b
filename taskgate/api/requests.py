"""Reading request bodies and parameters: bad input becomes InvalidInput naming the field."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from taskgate.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)


async def json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        raise InvalidInput("body", "a JSON object is required")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput("body", f"not valid JSON ({exc.__class__.__name__})") from exc
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object")
    return body


def parse(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInput(field, first["msg"]) from exc


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    value = request.query.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise InvalidInput(name, "must be an integer") from exc
    if not low <= number <= high:
        raise InvalidInput(name, f"must be between {low} and {high}")
    return number
