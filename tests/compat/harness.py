"""One GoAPI client round trip, as the public clients do it (piapi-mcp-server ``handleTask``, the n8n
PiAPI nodes' ``waitForTaskCompletion``, piapi-cli ``run``): create with ``POST /api/v1/task``, require
``code == 200`` and ``message == "success"``, read ``data.task_id``, poll ``GET /api/v1/task/{id}`` until
``status`` is ``completed`` with a non-null ``output``, read ``meta.usage.consume``."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.system import System

# enough of every wallet for any task in the catalogue
WALLETS = {"credits": 100_000, "mj_quota": 10_000, "suno_quota": 10_000, "luma_quota": 10_000}
POLL_S = 0.02
TIMEOUT_S = 30.0


async def customer(system: System, plan: str = "developer") -> str:
    """A customer with full wallets and one shared simulated account; returns the API key."""
    _, key = await system.user(plan, wallets=dict(WALLETS))
    await system.shared_account(capacity=20)
    return key


async def round_trip(
    system: System, key: str, body: dict[str, Any], *, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Create the task and poll it to ``completed``; returns ``data`` of the last poll."""
    status, created = await system.call("POST", "/api/v1/task", key, json=body, headers=headers or {})
    assert status == 200, created
    assert created["code"] == 200 and created["message"] == "success", created
    task_id = created["data"]["task_id"]
    assert isinstance(task_id, str) and task_id
    assert created["data"]["model"] and created["data"]["task_type"] == body["task_type"]
    deadline = asyncio.get_running_loop().time() + TIMEOUT_S
    while True:
        status, polled = await system.call("GET", f"/api/v1/task/{task_id}", key)
        assert status == 200 and polled["code"] == 200 and polled["message"] == "success", polled
        data: dict[str, Any] = polled["data"]
        if data["status"] == "completed":
            break
        assert data["status"] != "failed", data["error"]
        assert asyncio.get_running_loop().time() < deadline, f"task {task_id} stuck in {data['status']}"
        await asyncio.sleep(POLL_S)
    assert data["output"] is not None and data["error"]["code"] == 0
    usage = data["meta"]["usage"]
    assert isinstance(usage["consume"], int) and usage["consume"] == usage["frozen"]
    return data


def is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


async def fetch_ok(system: System, url: str) -> bytes:
    """The client downloads the result: the URL answers 200 with a body."""
    async with system.http.get(url) as resp:
        assert resp.status == 200, url
        return await resp.read()
