"""A task with a webhook endpoint: the real worker delivers signed status changes, in order."""

from __future__ import annotations

import asyncio

from aiohttp import web

from taskgate.webhooks.receiver import receiver_handler
from tests.redis_server import free_port
from tests.system import serve


async def test_webhook_receives_processing_then_completed(system):
    got: list[dict] = []

    async def on_task(task: dict) -> None:
        got.append(task)

    app = web.Application()
    app.router.add_post("/hook", receiver_handler("s3cret", on_task))
    port = free_port()
    runner = await serve(app, port)
    try:
        _, key = await system.user("developer", wallets={"mj_quota": 100})
        await system.shared_account(capacity=2)
        _, body = await system.imagine(
            key,
            "hooked [sim duration=0.3]",
            config={"webhook_config": {"endpoint": f"http://127.0.0.1:{port}/hook", "secret": "s3cret"}},
        )
        task_id = body["data"]["task_id"]
        await system.wait_final(key, task_id)
        for _ in range(200):
            if got and got[-1]["status"] == "completed":
                break
            await asyncio.sleep(0.02)
    finally:
        await runner.cleanup()
    statuses = [t["status"] for t in got]
    assert statuses[-1] == "completed" and got[-1]["task_id"] == task_id
    rank = {"processing": 1, "completed": 2}
    assert all(rank[a] <= rank[b] for a, b in zip(statuses, statuses[1:], strict=False))
    assert got[-1]["output"]["image_url"].startswith("http")
