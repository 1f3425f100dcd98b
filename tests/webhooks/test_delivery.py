"""Deliveries from the outbox to a local receiver: signed body, order, retries, 410, 3xx, timeouts,
attempt records, and at-least-once after a sender that crashed holding a claim."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from taskgate.scheduler.dispatcher import Dispatcher
from taskgate.webhooks.outbox import WebhookDispatcher, list_attempts
from taskgate.webhooks.receiver import verify_request
from tests.factories import enqueue, make_account, make_user
from tests.lua.test_task_lifecycle import finish
from tests.redis_server import free_port
from tests.system import serve

T0 = 1_800_000_000_000
SECRET = "hook-secret"
RANK = {"pending": 0, "processing": 1, "completed": 2, "failed": 2}


class Receiver:
    def __init__(self) -> None:
        self.received: list[dict] = []
        self.headers: list[dict] = []
        self.responses: list[int | str] = []  # scripted: status codes, "sleep", "redirect"
        self.redirect_hits = 0
        self.release = asyncio.Event()  # a "sleep" answer hangs until the test ends

    async def hook(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        action = self.responses.pop(0) if self.responses else 200
        if action == "sleep":  # longer than the sender's timeout, however loaded the machine
            await self.release.wait()
        if action == "redirect":
            raise web.HTTPFound("/elsewhere")
        payload = verify_request(request.headers, body, SECRET, now=json.loads(body)["timestamp"])
        self.headers.append(dict(request.headers))
        if isinstance(action, int) and action >= 300:
            return web.Response(status=action)
        self.received.append(payload["data"])
        return web.json_response({"ok": True})

    async def elsewhere(self, request: web.Request) -> web.Response:
        self.redirect_hits += 1
        return web.Response()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    r = Receiver()
    app = web.Application()
    app.router.add_post("/hook", r.hook)
    app.router.add_post("/elsewhere", r.elsewhere)
    port = free_port()
    runner = await serve(app, port)
    yield r, f"http://127.0.0.1:{port}/hook"
    r.release.set()
    await runner.cleanup()


@pytest.fixture
async def sender(redis, scripts, keys, settings) -> AsyncIterator[WebhookDispatcher]:
    d = WebhookDispatcher(redis, scripts, keys, settings.model_copy(update={"webhook_timeout_s": 0.5}))
    yield d
    await d.close()


async def running_task(redis, scripts, keys, settings, url):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    await make_account(scripts, keys, capacity=5)
    task_id = await enqueue(scripts, keys, user, price=14, webhook=url, webhook_secret=SECRET, now=T0)
    [d] = await Dispatcher(redis, scripts, keys, settings).dispatch(now_ms=T0)
    return task_id, d


async def test_delivers_signed_current_state(redis, scripts, keys, settings, receiver, sender):
    r, url = receiver
    task_id, _ = await running_task(redis, scripts, keys, settings, url)
    assert await sender.run_due(now_ms=T0) == 1
    [data] = r.received
    assert data["task_id"] == task_id and data["status"] == "processing"
    assert r.headers[0]["x-webhook-secret"] == SECRET and r.headers[0]["webhook-id"] == f"{task_id}:1"
    await finish(scripts, keys, task_id, 1, "completed", now=T0 + 10)
    await sender.run_due(now_ms=T0 + 20)
    assert [x["status"] for x in r.received] == ["processing", "completed"]
    assert await sender.run_due(now_ms=T0 + 10_000) == 0  # nothing left
    attempts = await list_attempts(redis, keys, task_id)
    assert [a["status"] for a in attempts] == [200, 200] and all("latency_ms" in a for a in attempts)


async def test_retry_schedule_and_no_older_status_after_newer(
    redis, scripts, keys, settings, receiver, sender
):
    r, url = receiver
    r.responses = [500]
    task_id, _ = await running_task(redis, scripts, keys, settings, url)
    await sender.run_due(now_ms=T0)  # processing: 500 -> retry in 5 s
    due = await redis.zscore(keys.webhook_outbox(), f"{task_id}:1")
    assert due == T0 + settings.webhook_retry_delays_s[0] * 1000
    await finish(scripts, keys, task_id, 1, "completed", now=T0 + 1000)
    await sender.run_due(now_ms=T0 + 1000)  # the completed delivery waits for the one in flight? no:
    await sender.run_due(now_ms=T0 + 6000)
    await sender.run_due(now_ms=T0 + 9000)
    statuses = [x["status"] for x in r.received]
    assert statuses and all(RANK[a] <= RANK[b] for a, b in zip(statuses, statuses[1:], strict=False))
    assert statuses[-1] == "completed"
    assert await redis.zcard(keys.webhook_outbox()) == 0


async def test_retries_follow_the_schedule_then_give_up(redis, scripts, keys, settings, receiver, sender):
    r, url = receiver
    r.responses = [503] * 20
    task_id, _ = await running_task(redis, scripts, keys, settings, url)
    now = T0
    for delay in settings.webhook_retry_delays_s:
        await sender.run_due(now_ms=now)
        now += delay * 1000
        assert await redis.zscore(keys.webhook_outbox(), f"{task_id}:1") == now
    await sender.run_due(now_ms=now)  # the 10th attempt fails: given up
    assert await redis.zcard(keys.webhook_outbox()) == 0
    assert len(await list_attempts(redis, keys, task_id)) == len(settings.webhook_retry_delays_s) + 1
    assert sum(settings.webhook_retry_delays_s) >= 86_400  # the default schedule: at least a day


async def test_410_disables_the_endpoint(redis, scripts, keys, settings, receiver, sender):
    r, url = receiver
    r.responses = [410]
    task_id, _ = await running_task(redis, scripts, keys, settings, url)
    await sender.run_due(now_ms=T0)
    assert await redis.sismember(keys.webhook_disabled(), url)
    await finish(scripts, keys, task_id, 1, "completed", now=T0 + 10)
    await sender.run_due(now_ms=T0 + 20)
    assert r.received == [] and len(r.headers) == 1  # no further POST
    assert await redis.zcard(keys.webhook_outbox()) == 0


async def test_redirects_are_failures_and_not_followed(redis, scripts, keys, settings, receiver, sender):
    r, url = receiver
    r.responses = ["redirect"]
    task_id, _ = await running_task(redis, scripts, keys, settings, url)
    await sender.run_due(now_ms=T0)
    assert r.redirect_hits == 0
    [attempt] = await list_attempts(redis, keys, task_id)
    assert attempt["status"] == 302 and attempt["error"] == "HTTP 302"
    assert await redis.zscore(keys.webhook_outbox(), f"{task_id}:1") == T0 + 5000


async def test_timeouts_are_failures(redis, scripts, keys, settings, receiver, sender):
    r, url = receiver
    r.responses = ["sleep"]
    task_id, _ = await running_task(redis, scripts, keys, settings, url)
    await sender.run_due(now_ms=T0)
    [attempt] = await list_attempts(redis, keys, task_id)
    assert attempt["error"] == "timeout" and attempt["status"] is None


async def test_private_destination_refused_unless_allowed(redis, scripts, keys, settings, receiver):
    r, url = receiver
    strict = WebhookDispatcher(
        redis, scripts, keys, settings.model_copy(update={"webhook_allow_private": False})
    )
    try:
        task_id, _ = await running_task(redis, scripts, keys, settings, url)
        await strict.run_due(now_ms=T0)
    finally:
        await strict.close()
    assert r.headers == []
    [attempt] = await list_attempts(redis, keys, task_id)
    assert attempt["error"] == "forbidden destination"


async def test_at_least_once_after_a_crashed_sender(redis, scripts, keys, settings, receiver, sender):
    r, url = receiver
    task_id, _ = await running_task(redis, scripts, keys, settings, url)
    claimed = await scripts.call(  # a sender claims, then dies before posting
        "claim_deliveries",
        keys=[keys.webhook_outbox(), keys.webhook_sent_seq(), keys.webhook_inflight()],
        args=[keys.base, T0, 10, settings.webhook_claim_ms],
    )
    assert claimed[2] == f"{task_id}:1"
    assert await sender.run_due(now_ms=T0 + 1000) == 0  # still claimed
    assert await sender.run_due(now_ms=T0 + settings.webhook_claim_ms + 1) == 1
    assert [x["status"] for x in r.received] == ["processing"]


async def test_account_notifications_reach_the_owner(redis, scripts, keys, settings, receiver, sender):
    from taskgate.pool.health import AccountHealth
    from taskgate.providers.base import ErrorKind

    r, url = receiver
    owner = await make_user(redis, scripts, keys, notify_endpoint=url, notify_secret=SECRET)
    acc = await make_account(scripts, keys, owner=owner)
    shared = await make_account(scripts, keys)
    health = AccountHealth(redis, scripts, keys, settings)
    await health.report(acc, ErrorKind.CAPTCHA, now_ms=T0)
    await health.report(shared, ErrorKind.BANNED, now_ms=T0)  # shared accounts notify nobody
    await sender.run_due(now_ms=T0 + 1)
    await health.report(acc, ErrorKind.BANNED, now_ms=T0 + 2)
    await sender.run_due(now_ms=T0 + 3)
    assert [(e["account_id"], e["old_state"], e["state"]) for e in r.received] == [
        (acc, "active", "needs_captcha"),
        (acc, "needs_captcha", "banned"),
    ]
    assert r.headers[0]["webhook-id"] == f"account:{owner}:000000000001"


async def test_a_configured_schedule_and_claim_are_followed(redis, scripts, keys, settings, receiver):
    """The retry schedule and the claim length are settings (the chaos suite runs on a short clock)."""
    r, url = receiver
    r.responses = [503] * 5
    short = settings.model_copy(
        update={"webhook_retry_delays_s": (0.5, 2.0), "webhook_claim_ms": 700, "webhook_timeout_s": 0.5}
    )
    sender = WebhookDispatcher(redis, scripts, keys, short)
    try:
        task_id, _ = await running_task(redis, scripts, keys, settings, url)
        await sender.run_due(now_ms=T0)
        assert await redis.zscore(keys.webhook_outbox(), f"{task_id}:1") == T0 + 500
        await sender.run_due(now_ms=T0 + 500)
        assert await redis.zscore(keys.webhook_outbox(), f"{task_id}:1") == T0 + 2500
        await sender.run_due(now_ms=T0 + 2500)  # the schedule is exhausted: given up
        assert await redis.zcard(keys.webhook_outbox()) == 0
        assert len(await list_attempts(redis, keys, task_id)) == 3
    finally:
        await sender.close()
