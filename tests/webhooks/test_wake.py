"""The sender's wake-up: a delivery queued by finish_task is attempted at once, not at the next poll
(the poll interval is set long here, so these tests fail if the wake-up is broken), and a slow
endpoint holds back no other task's delivery."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from taskgate.scheduler.dispatcher import Dispatcher
from taskgate.webhooks.outbox import WebhookDispatcher
from tests.factories import enqueue, make_account, make_user
from tests.lua.test_task_lifecycle import finish
from tests.redis_server import free_port
from tests.system import serve
from tests.webhooks.test_delivery import T0, running_task
from tests.webhooks.test_delivery import receiver as receiver  # noqa: F401 - a fixture
from tests.webhooks.test_delivery import sender as sender  # noqa: F401 - a fixture

SECRET = "wake-secret"
POLL_S = 10.0  # the fallback poll: far longer than any wait below
PROMPT_S = 4.0  # generous, yet well under POLL_S


class Hooks:
    """A receiver recording each task's statuses; a POST to ``?slow`` waits for ``release``."""

    def __init__(self) -> None:
        self.received: dict[str, list[str]] = {}
        self.release = asyncio.Event()
        self.arrived = asyncio.Condition()

    async def hook(self, request: web.Request) -> web.Response:
        data = json.loads(await request.read())["data"]
        if "slow" in request.query:
            await self.release.wait()
        async with self.arrived:
            self.received.setdefault(data["task_id"], []).append(data["status"])
            self.arrived.notify_all()
        return web.Response()

    async def wait_for(self, task_id: str, status: str) -> None:
        async with self.arrived:
            await asyncio.wait_for(
                self.arrived.wait_for(lambda: status in self.received.get(task_id, [])), PROMPT_S
            )


@pytest.fixture
async def hooks() -> AsyncIterator[tuple[Hooks, str]]:
    h = Hooks()
    app = web.Application()
    app.router.add_post("/hook", h.hook)
    port = free_port()
    runner = await serve(app, port)
    yield h, f"http://127.0.0.1:{port}/hook"
    h.release.set()
    await runner.cleanup()


@pytest.fixture
async def running(redis, scripts, keys, settings) -> AsyncIterator[tuple[Any, asyncio.Event]]:
    """A sender in its run loop (real clock), polling only every POLL_S."""
    slow = settings.model_copy(update={"webhook_poll_interval_s": POLL_S, "webhook_timeout_s": 30.0})
    sender = WebhookDispatcher(redis, scripts, keys, slow)
    stop = asyncio.Event()
    loop = asyncio.create_task(sender.run_forever(stop))
    yield sender, stop
    stop.set()
    await asyncio.wait_for(loop, 10)


async def start_task(redis, scripts, keys, settings, url: str) -> str:
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    await make_account(scripts, keys, capacity=5)
    task_id = await enqueue(scripts, keys, user, price=14, webhook=url, webhook_secret=SECRET)
    await Dispatcher(redis, scripts, keys, settings).dispatch()
    return task_id


async def test_finish_wakes_the_sender_before_its_poll(redis, scripts, keys, settings, hooks, running):
    h, url = hooks
    task_id = await start_task(redis, scripts, keys, settings, url)
    await h.wait_for(task_id, "processing")  # woken by dispatch; the loop then idles for POLL_S
    await asyncio.sleep(0.2)  # let the loop go back to waiting (not a speed assertion)
    await finish(scripts, keys, task_id, 1, "completed")
    await h.wait_for(task_id, "completed")
    assert h.received[task_id] == ["processing", "completed"]


async def test_a_slow_endpoint_holds_back_no_other_task(redis, scripts, keys, settings, hooks, running):
    h, url = hooks
    slow_task = await start_task(redis, scripts, keys, settings, url + "?slow")
    await asyncio.sleep(0.3)  # its processing delivery is in flight, held by the receiver
    other = await start_task(redis, scripts, keys, settings, url)
    await h.wait_for(other, "processing")
    assert slow_task not in h.received  # still in flight
    h.release.set()
    await h.wait_for(slow_task, "processing")


async def test_wake_tokens_stay_bounded(redis, scripts, keys, settings):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 1000})
    await make_account(scripts, keys, capacity=50)
    for _ in range(10):
        await enqueue(scripts, keys, user, price=14, webhook="http://127.0.0.1:9/hook")
    await Dispatcher(redis, scripts, keys, settings).dispatch()
    assert 1 <= await redis.llen(keys.webhook_wake()) <= 4  # no sender running: a few tokens, not one each


async def test_a_status_held_behind_the_one_in_flight_goes_when_that_one_ends(
    redis, scripts, keys, settings, receiver, sender, monkeypatch
):
    """claim_deliveries puts a task's newer delivery off (+1 s) while an older one is in the air;
    recording the older one makes the newer due at once."""
    r, url = receiver
    task_id, _ = await running_task(redis, scripts, keys, settings, url)
    real_post, held = sender._post, []  # noqa: SLF001

    async def finish_while_posting(*args: Any) -> Any:  # the processing body is built: now it completes
        await finish(scripts, keys, task_id, 1, "completed", now=T0 + 10)
        held.append(await sender.run_due(now_ms=T0 + 20))
        return await real_post(*args)

    monkeypatch.setattr(sender, "_post", finish_while_posting)
    await sender.run_due(now_ms=T0)
    monkeypatch.setattr(sender, "_post", real_post)
    assert held == [0]  # the completed delivery waited for the one in flight...
    assert await redis.zscore(keys.webhook_outbox(), f"{task_id}:2") <= T0 + 20  # ...and is due now
    assert await sender.run_due(now_ms=T0 + 30) == 1
    assert [x["status"] for x in r.received] == ["processing", "completed"]


async def test_a_retry_keeps_its_backoff(redis, scripts, keys, settings, receiver, sender):
    r, url = receiver
    r.responses = [500, 500]
    task_id, _ = await running_task(redis, scripts, keys, settings, url)
    await sender.run_due(now_ms=T0)  # processing fails: retry at T0 + 5 s
    await finish(scripts, keys, task_id, 1, "completed", now=T0 + 10)
    await sender.run_due(now_ms=T0 + 20)  # completed fails too: retry at T0 + 20 + 5 s
    retry_at = T0 + 20 + int(settings.webhook_retry_delays_s[0] * 1000)
    assert await redis.zscore(keys.webhook_outbox(), f"{task_id}:2") == retry_at
    await sender.run_due(now_ms=T0 + 5000)  # the processing retry is delivered (the current state)...
    assert await redis.zscore(keys.webhook_outbox(), f"{task_id}:2") in (None, retry_at)  # ...not pulled in
