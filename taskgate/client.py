"""A small async Python client of taskgate's (GoAPI-compatible) task API.

async with TaskgateClient("http://127.0.0.1:8000", api_key) as client:
    task = await client.create("midjourney", "imagine", {"prompt": "a lighthouse"})
    done = await client.wait(task["task_id"])
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import aiohttp

FINAL = ("completed", "failed")


class TaskgateClientError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status, self.code, self.message = status, code, message


class TaskgateClient:
    def __init__(self, base_url: str, api_key: str, session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._session = session
        self._owned = session is None

    async def __aenter__(self) -> TaskgateClient:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._owned and self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(
        self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        if self._session is None:
            raise RuntimeError("use 'async with TaskgateClient(...)'")
        all_headers = {"x-api-key": self.api_key, **(headers or {})}
        async with self._session.request(
            method, self.base_url + path, json=json, headers=all_headers
        ) as resp:
            body = await resp.json(content_type=None)
        if resp.status != 200 or body.get("code") != 200:
            raise TaskgateClientError(
                resp.status, int(body.get("code", resp.status)), str(body.get("message"))
            )
        return body["data"]

    async def create(
        self,
        model: str,
        task_type: str,
        input: dict[str, Any],
        *,
        config: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        body = {"model": model, "task_type": task_type, "input": input, "config": config or {}}
        result: dict[str, Any] = await self._call("POST", "/api/v1/task", json=body, headers=headers)
        return result

    async def get(self, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", f"/api/v1/task/{task_id}")
        return result

    async def wait(self, task_id: str, *, timeout_s: float = 600, poll_s: float = 0.5) -> dict[str, Any]:
        """Poll until the task is completed or failed (raises TimeoutError after ``timeout_s``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            task = await self.get(task_id)
            if task["status"] in FINAL:
                return task
            if loop.time() > deadline:
                raise TimeoutError(f"task {task_id} still {task['status']} after {timeout_s}s")
            await asyncio.sleep(poll_s)

    async def cancel(self, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", f"/api/v1/task/{task_id}/cancel")
        return result

    async def account(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/api/v1/account")
        return result
