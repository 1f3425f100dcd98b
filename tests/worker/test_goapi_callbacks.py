"""GoAPI's ``webhook_config`` as the upstream callback, end to end: a real scheduler, worker and API
against a scripted GoAPI upstream. The submit carries this attempt's endpoint and secret; a
GoAPI-shaped webhook with that secret wakes the worker, which polls once and finishes the task
(midjourney fast is expected to take 60 s, so the first safety poll is >= 72 s away: finishing
within the test's wait needs the callback). A wrong secret, a stale attempt, a progress webhook and
a replay change nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from taskgate.api.app import create_app
from taskgate.models import CreateTaskRequest
from taskgate.pool.registry import AccountSpec
from taskgate.providers import callbacks
from taskgate.scheduler.runner import run_scheduler
from taskgate.services import Services, build_services
from taskgate.settings import Settings
from taskgate.worker.runner import run_worker
from tests.providers.fake_goapi import Canned, FakeGoapi, envelope, task
from tests.redis_server import free_port
from tests.worker.stack import serve

UPSTREAM_ID = "goapi-job-1"
POLL_PATH = f"/api/v1/task/{UPSTREAM_ID}"
WAIT_S = 15.0  # generous, far under the first safety poll


@pytest.fixture
def gp_settings(settings: Settings) -> Settings:
    api_port = free_port()
    return settings.model_copy(
        update={
            "api_port": api_port,
            "callback_base_url": f"http://127.0.0.1:{api_port}",
            "callback_secret": SecretStr("goapi-callback-test-secret"),
            "renew_interval_s": 0.2,
            "sweep_interval_s": 0.2,
            "worker_shutdown_grace_s": 0.5,  # a held attempt at teardown is handed back, not awaited
        }
    )


@pytest.fixture
async def stack(gp_settings: Settings) -> AsyncIterator[tuple[Services, FakeGoapi]]:
    goapi = FakeGoapi()
    await goapi.start()
    goapi.on("POST", "/api/v1/task", 200, envelope(task(UPSTREAM_ID, "pending")))
    goapi.on("GET", POLL_PATH, 200, envelope(task(UPSTREAM_ID, "processing")))
    services = await build_services(gp_settings)
    api = await serve(create_app(gp_settings, services), gp_settings.api_port)
    stop = asyncio.Event()
    roles = [
        asyncio.create_task(run_scheduler(gp_settings, stop)),
        asyncio.create_task(run_worker(gp_settings, stop)),
    ]
    spec = AccountSpec(provider="goapi", base_url=goapi.base_url, api_key=SecretStr("gk"), capacity=5)
    await services.accounts.add(spec)
    try:
        yield services, goapi
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*roles), 30)
        await api.cleanup()
        await services.close()
        await goapi.close()


async def _until(check: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while not (value := await check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
    return value


def _polls(goapi: FakeGoapi) -> int:
    return sum(1 for method, path, _, _ in goapi.requests if (method, path) == ("GET", POLL_PATH))


async def _submitted(services: Services, goapi: FakeGoapi) -> tuple[str, dict[str, Any]]:
    user_id, _ = await services.users.create("premium", wallets={"mj_quota": 10_000})
    user = await services.users.get(user_id)
    req = CreateTaskRequest(
        model="midjourney", task_type="imagine", input={"prompt": "a cat", "process_mode": "fast"}
    )
    task_id = str((await services.tasks.create(user, req))["task_id"])

    async def submitted() -> Any:
        record = await services.tasks.load(task_id)
        return record is not None and record.upstream_id == UPSTREAM_ID

    await _until(submitted, "the upstream submit")
    [body] = [b for method, _, _, b in goapi.requests if method == "POST"]
    return task_id, body


async def test_the_submit_registers_this_attempts_endpoint_and_secret(gp_settings, stack):
    services, goapi = stack
    task_id, body = await _submitted(services, goapi)
    assert body["config"]["webhook_config"] == {
        "endpoint": f"{gp_settings.callback_base_url}/callbacks/v1/goapi/{task_id}/1",
        "secret": callbacks.webhook_secret(gp_settings, task_id, 1),
    }
    assert callbacks.webhook_secret(gp_settings, task_id, 1) != callbacks.token(gp_settings, task_id, 1)


async def test_a_goapi_webhook_with_the_right_secret_finishes_the_task(gp_settings, stack):
    services, goapi = stack
    task_id, body = await _submitted(services, goapi)
    hook = body["config"]["webhook_config"]
    done = task(UPSTREAM_ID, "completed", output={"image_url": "https://img.example/1.png"})
    payload = {"timestamp": int(time.time()), "data": done}
    polls = _polls(goapi)
    async with aiohttp.ClientSession() as http:

        async def post(url: str, secret: str | None, body: Any = payload) -> tuple[int, Any]:
            headers = {} if secret is None else {"x-webhook-secret": secret}
            async with http.post(url, json=body, headers=headers) as resp:
                return resp.status, (await resp.json())["data"]

        stale_url = hook["endpoint"].removesuffix("/1") + "/0"
        assert (await post(hook["endpoint"], "wrong"))[0] == 404
        assert (await post(hook["endpoint"], None))[0] == 404
        assert (await post(hook["endpoint"], hook["secret"] + "\u00e9"))[0] == 404  # not a 500
        assert (await post(stale_url, hook["secret"]))[0] == 404  # the secret names attempt 1 only
        stale = callbacks.webhook_secret(gp_settings, task_id, 0)
        assert await post(stale_url, stale) == (200, {"woken": False})  # an older attempt's own callback
        progress = {"timestamp": 1, "data": task(UPSTREAM_ID, "processing")}
        assert await post(hook["endpoint"], hook["secret"], progress) == (200, {"woken": False})
        assert (await post(hook["endpoint"], hook["secret"], {"timestamp": 1}))[0] == 400
        record = await services.tasks.load(task_id)
        assert record is not None and record.status == "processing" and _polls(goapi) == polls

        goapi.canned[("GET", POLL_PATH)] = [Canned(200, envelope(done))]
        assert await post(hook["endpoint"], hook["secret"]) == (200, {"woken": True})

        async def finished() -> Any:
            record = await services.tasks.load(task_id)
            return record if record is not None and record.status == "completed" else None

        record = await _until(finished, "the task to complete")
        assert record.output == {"image_url": "https://img.example/1.png"}
        assert _polls(goapi) == polls + 1  # the one poll the webhook asked for; the refused ones asked none
        assert await post(hook["endpoint"], hook["secret"]) == (200, {"woken": False})  # a replay
    ledger = await services.redis.xrange(services.keys.ledger(record.user_id))
    assert [e[1][b"kind"] for e in ledger].count(b"charge") == 1
