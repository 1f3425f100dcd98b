"""Upstream callbacks end to end: the API's callback route (per-attempt secret, fenced by attempt,
idempotent, nothing changed for a bad token) and a real worker woken by a callback instead of
polling, with polling as the fallback when a callback is lost."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from taskgate.api.app import create_app
from taskgate.models import CreateTaskRequest
from taskgate.providers import callbacks
from taskgate.services import Services, build_services
from taskgate.settings import Settings
from taskgate.worker.callbacks import CallbackHub
from tests.redis_server import free_port
from tests.worker.stack import PollLog, running_stack, serve


@pytest.fixture
def cb_settings(settings: Settings) -> Settings:
    api_port = free_port()
    return settings.model_copy(
        update={
            "api_port": api_port,
            "sim_port": free_port(),
            "callback_base_url": f"http://127.0.0.1:{api_port}",
            "callback_secret": SecretStr("callback-test-secret"),
            "sim_latency_fast_s": 20.0,
            "upstream_poll_interval_s": 0.02,
            "renew_interval_s": 0.2,
            "sweep_interval_s": 0.2,
        }
    )


async def _run(services: Services, prompt: str, n: int = 1, timeout_s: float = 15.0) -> list[Any]:
    user_id, _ = await services.users.create("premium", wallets={"mj_quota": 10_000})
    user = await services.users.get(user_id)
    req = CreateTaskRequest(
        model="midjourney", task_type="imagine", input={"prompt": prompt, "process_mode": "fast"}
    )
    ids = [str((await services.tasks.create(user, req))["task_id"]) for _ in range(n)]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        records = [await services.tasks.load(i) for i in ids]
        if all(r is not None and r.status in ("completed", "failed") for r in records):
            return records
        assert asyncio.get_running_loop().time() < deadline, "tasks did not finish"
        await asyncio.sleep(0.02)


async def test_a_callback_wakes_the_worker_instead_of_polling(cb_settings: Settings):
    """Expected 20 s, so the first safety poll is >= 24 s away: finishing within the test's 15 s
    needs the callback; the worker then polls once to read the result."""
    log = PollLog()
    async for services in running_stack(cb_settings, log, "cb-test", api=True):
        [record] = await _run(services, "p [sim duration=0.3]")
        assert record.status == "completed"
        assert len(log.polls[record.upstream_id]) == 1


async def test_duplicate_callbacks_settle_once(cb_settings: Settings):
    log = PollLog()
    async for services in running_stack(cb_settings, log, "cb-test", api=True):
        records = await _run(services, "p [sim duration=0.2 callback=duplicate]", n=3)
        assert {r.status for r in records} == {"completed"}
        kinds = [e[1][b"kind"] for e in await services.redis.xrange(services.keys.ledger(records[0].user_id))]
        assert kinds.count(b"charge") == 3


async def test_a_lost_callback_is_caught_by_the_safety_poll(cb_settings: Settings):
    settings = cb_settings.model_copy(update={"sim_latency_fast_s": 0.5})  # first safety poll at ~0.75 s
    log = PollLog()
    async for services in running_stack(settings, log, "cb-test", api=True):
        [record] = await _run(services, "p [sim duration=0.2 callback=lost]")
        assert record.status == "completed" and len(log.polls[record.upstream_id]) >= 1


async def test_callback_route_checks_the_attempt_secret(cb_settings: Settings, redis: Any):
    services = await build_services(cb_settings)
    runner = await serve(create_app(cb_settings, services), cb_settings.api_port)
    hub = CallbackHub(services.redis, services.keys)
    woken = await hub.register("task-1", 2)
    other = await hub.register("task-1", 1)
    try:
        async with aiohttp.ClientSession() as http:

            async def post(url: str) -> int:
                async with http.post(url, json={"status": "completed"}) as resp:
                    return resp.status

            good = callbacks.callback_url(cb_settings, "task-1", 2)
            assert await post(good.replace("/2/", "/1/")) == 404  # the token names attempt 2 only
            assert await post(good[:-1] + ("0" if good[-1] != "0" else "1")) == 404
            assert await post(good.replace("task-1", "task-2")) == 404
            assert await post(good.replace("/2/", "/\u00b2/")) == 404  # a non-ASCII digit, not a 500
            assert await post(good.replace("/2/", "/x/")) == 404
            await asyncio.sleep(0.1)
            assert not woken.is_set() and not other.is_set()  # nothing published for a bad token
            assert await post(good) == 200 and await post(good) == 200  # idempotent
            await asyncio.wait_for(woken.wait(), 5)
            assert not other.is_set()  # the other attempt of the same task is not woken
    finally:
        hub.forget("task-1", 1)
        hub.forget("task-1", 2)
        await runner.cleanup()
        await services.close()


async def test_an_idle_subscription_outlives_the_socket_timeout(cb_settings: Settings, redis: Any):
    """No callback for longer than the socket timeout: the subscription stays (a dropped one
    would lose the callbacks published while it is re-made)."""
    services = await build_services(cb_settings.model_copy(update={"redis_socket_timeout_s": 0.5}))
    hub = CallbackHub(services.redis, services.keys)
    woken = await hub.register("task-1", 1)
    try:
        await asyncio.sleep(1.5)
        await services.redis.publish(services.keys.upstream_callbacks(), callbacks.wake_message("task-1", 1))
        await asyncio.wait_for(woken.wait(), 5)
        assert hub.subscriptions == 1
    finally:
        hub.forget("task-1", 1)
        await services.close()
