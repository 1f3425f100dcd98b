"""The simulator's completion callbacks: sent once when a job ends, dropped or doubled on request,
refused for a bad URL (and then no job is created)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.sim.harness import Sim


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    got: list[dict[str, Any]] = []

    async def take(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/cb", take)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/cb")), got
    finally:
        await server.close()


async def submit(sim: Sim, prompt: str, url: Any, key: str) -> tuple[int, dict[str, Any]]:
    body = {
        "model": "midjourney",
        "task_type": "imagine",
        "mode": "fast",
        "input": {"prompt": prompt},
        "idempotency_key": key,
        "callback_url": url,
    }
    async with sim.http.post(f"{sim.base_url}/v1/jobs", json=body, headers={"x-api-key": "k"}) as r:
        return r.status, await r.json()


async def wait_for(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_callback_is_sent_once_when_the_job_ends(sim: Sim, receiver):
    url, got = receiver
    status, job = await submit(sim, "cat [sim duration=0.05]", url, "t1")
    assert status == 200
    sim.clock.advance(1)  # the job's view reads as ended when the callback fires
    await wait_for(lambda: len(got) == 1)
    assert got[0]["id"] == job["id"] and got[0]["status"] == "completed"
    again = await submit(sim, "cat [sim duration=0.05]", url, "t1")  # same key: no second job, no callback
    assert again[1]["created"] is False
    await asyncio.sleep(0.2)
    assert len(got) == 1
    assert (await sim.get("/sim/stats"))[1]["callbacks_sent"] == 1


async def test_lost_and_duplicate_directives(sim: Sim, receiver):
    url, got = receiver
    sim.clock.advance(0)
    await submit(sim, "cat [sim duration=0 callback=lost]", url, "lost")
    await submit(sim, "cat [sim duration=0 callback=duplicate]", url, "dup")
    await wait_for(lambda: len(got) == 2)
    await asyncio.sleep(0.2)
    stats = (await sim.get("/sim/stats"))[1]
    assert len(got) == 2 and got[0]["id"] == got[1]["id"]
    assert (stats["callbacks_sent"], stats["callbacks_lost"]) == (2, 1)


@pytest.mark.parametrize("url", ["ftp://example.com/x", 42, "x" * 2001])
async def test_bad_callback_url_is_refused_and_creates_nothing(sim: Sim, url: Any):
    status, body = await submit(sim, "cat", url, "bad")
    assert status == 400 and "callback_url" in body["error"]["message"]
    assert (await sim.get("/sim/stats"))[1]["jobs_submitted"] == 0
