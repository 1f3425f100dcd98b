"""A tiny GoAPI-compatible upstream (unified task API) on loopback, scripted per test."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

Route = tuple[str, str]  # (method, path)


@dataclass
class Canned:
    status: int
    body: Any  # dict -> JSON; str -> text
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def envelope(data: Any = None, *, code: int = 200, message: str = "success") -> dict[str, Any]:
    return {"code": code, "data": data, "message": message}


def task(
    task_id: str, status: str, output: dict[str, Any] | None = None, error: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "model": "midjourney",
        "task_type": "imagine",
        "status": status,
        "output": output,
        "error": error or {"code": 0, "message": "", "raw_message": ""},
    }


class FakeGoapi:
    def __init__(self) -> None:
        self.canned: dict[Route, list[Canned]] = {}
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def base_url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def start(self) -> None:
        await self.server.start_server()

    async def close(self) -> None:
        await self.server.close()

    def on(
        self,
        method: str,
        path: str,
        status: int,
        body: Any,
        *,
        delay_s: float = 0.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Queue an answer; the last queued answer for a route repeats."""
        self.canned.setdefault((method, path), []).append(Canned(status, body, headers or {}, delay_s))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.requests.append((request.method, request.path, dict(request.headers), body))
        queue = self.canned.get((request.method, request.path))
        if not queue:
            return web.json_response(envelope(code=404, message="route not scripted"), status=404)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        await asyncio.sleep(answer.delay_s)
        if isinstance(answer.body, str):
            return web.Response(status=answer.status, text=answer.body, headers=answer.headers)
        return web.json_response(answer.body, status=answer.status, headers=answer.headers)
