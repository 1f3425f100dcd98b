"""The webhook part of the chaos suite: a receiver that fails each task's first delivery (500, or a
timeout for every third task), answers 410 Gone on a second endpoint, and records what arrives.

Figures: ``webhook_lost`` (tasks whose final status never arrived at the live endpoint),
``webhook_order_violations`` (an older status after a newer one for a task), ``posts_after_410``
(deliveries to the gone endpoint that arrived more than ``IN_FLIGHT_S`` after its first 410: ones
already in flight when the endpoint was disabled cannot be recalled)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from aiohttp import web

from taskgate.store.redis_launcher import free_port
from taskgate.webhooks.receiver import verify_request

SECRET = "chaos-hook"
RANK = {"pending": 0, "staged": 0, "processing": 1, "completed": 2, "failed": 2}
SLOW_S = 3.0  # longer than the cluster's webhook timeout
IN_FLIGHT_S = 1.0


class ChaosReceiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.posts: dict[str, int] = defaultdict(int)
        self.received: dict[str, list[str]] = defaultdict(list)
        self.gone_posts: list[float] = []  # arrival times
        self.gone_tasks: set[str] = set()
        self.runner: web.AppRunner | None = None

    def url(self, i: int) -> str:
        path = "gone" if i % 10 == 9 else "hook"
        return f"http://127.0.0.1:{self.port}/{path}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.hook)
        app.router.add_post("/gone", self.gone)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        payload = verify_request(request.headers, body, SECRET, now=int(request.headers["webhook-timestamp"]))
        task = payload["data"]
        self.posts[task["task_id"]] += 1
        if self.posts[task["task_id"]] == 1:  # every task's first delivery fails
            if int(task["task_id"][:8], 16) % 3 == 0:  # not hash(): it changes per process
                await asyncio.sleep(SLOW_S)
            return web.Response(status=500)
        self.received[task["task_id"]].append(task["status"])
        return web.Response()

    async def gone(self, request: web.Request) -> web.Response:
        self.gone_posts.append(asyncio.get_running_loop().time())
        return web.Response(status=410)

    def figures(self, live_tasks: list[str], final: dict[str, str]) -> dict[str, Any]:
        lost = sum(1 for t in live_tasks if final.get(t) not in self.received.get(t, []))
        violations = sum(
            1
            for seq in self.received.values()
            for a, b in zip(seq, seq[1:], strict=False)
            if RANK[b] < RANK[a]
        )
        return {
            "webhook_lost": lost,
            "webhook_order_violations": violations,
            "posts_after_410": self._posts_after_410(),
        }

    def _posts_after_410(self) -> int:
        if not self.gone_posts:
            return 0
        first = self.gone_posts[0]
        return sum(1 for t in self.gone_posts if t > first + IN_FLIGHT_S)

    async def wait_delivered(self, live_tasks: list[str], final: dict[str, str], timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline and self.figures(live_tasks, final)["webhook_lost"]:
            await asyncio.sleep(0.2)
