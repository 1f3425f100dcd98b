"""Without Sentinel: a script call waits out a Redis that is away and retries (reconnecting); the
API answers 503 + Retry-After (not 500) while Redis is unavailable; WAIT without enough replicas is
a 503 the client may retry; a repeated create_task (same task id) freezes nothing twice."""

from __future__ import annotations

import asyncio
import json

import pytest
from redis.asyncio import Redis

from taskgate.errors import RedisUnavailable
from taskgate.services import assemble
from taskgate.store.scripts import IDEMPOTENT, Scripts
from tests.redis_server import RedisServer, free_port


def REAP_ARGS(keys, limit):  # noqa: N802 - the reaper's ARGV, as its header lists them
    return [keys.base, "", limit, 3, 30_000, "arq:job:", "arq:in-progress:"]


@pytest.fixture
async def user(services):
    return await services.users.create("developer", wallets={"mj_quota": 1000})


BODY = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "a fox", "process_mode": "fast"}}


async def test_a_script_call_retries_until_redis_is_back(keys):
    server = RedisServer(port=free_port())
    client = Redis.from_url(server.url, socket_connect_timeout=0.5)
    scripts = Scripts(client, retry_s=20)
    try:  # Redis is not there yet: the call must wait for it, not fail
        reap = scripts.call("reap_leases", keys=[keys.leases(), keys.arq_queue()], args=REAP_ARGS(keys, 10))
        call = asyncio.create_task(reap)
        await asyncio.sleep(0.5)  # a refused connection fails at once: only a retrying call is still on
        assert not call.done()
        await asyncio.to_thread(server.start)
        assert (await asyncio.wait_for(call, 20))[:2] == [0, 0]
    finally:
        await client.aclose()
        server.cleanup()


async def test_a_script_call_gives_up_after_its_budget_with_503(keys):
    client = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    try:
        with pytest.raises(RedisUnavailable) as info:
            await Scripts(client, retry_s=0.5).call(
                "reap_leases", keys=[keys.leases(), keys.arq_queue()], args=REAP_ARGS(keys, 1)
            )
        assert info.value.status == 503
    finally:
        await client.aclose()


def test_counters_and_top_ups_are_not_retried_after_an_unknown_outcome():
    assert {"adjust_wallet", "record_incorrect", "report_account"}.isdisjoint(IDEMPOTENT)
    assert {"create_task", "finish_task", "cancel_task", "dispatch_tasks"} <= IDEMPOTENT


async def test_api_answers_503_with_retry_after_while_redis_is_away(make_client, settings, user):
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.3)
    # a compressed clock: each call retries the refused connection for 1 s, then answers 503
    client = await make_client(assemble(settings.model_copy(update={"redis_retry_s": 1.0}), dead))
    try:
        for method, path in (
            ("POST", "/api/v1/task"),
            ("GET", "/api/v1/account"),
            ("GET", "/api/v1/task/0b0e6c55-3c1c-4d5b-9b43-1b6f2e2f7e11"),
        ):
            resp = await client.request(method, path, json=BODY, headers={"x-api-key": user[1]})
            body = json.loads(await resp.text())
            assert resp.status == 503 and resp.headers["Retry-After"] == "1", (path, body)
            assert body["code"] == 503 and "retry" in body["message"] and body["data"] is None
        ready = await client.get("/readyz")
        assert ready.status == 503 and ready.headers["Retry-After"] == "1"
    finally:
        await dead.aclose()


async def test_create_without_enough_replicas_is_503_and_retry_returns_the_same_task(
    make_client, settings, services, user, redis, keys
):
    durable = assemble(
        settings.model_copy(update={"redis_min_replicas_ack": 1, "redis_wait_timeout_ms": 50}),
        Redis.from_url(settings.redis_url),
    )
    client = await make_client(durable)
    try:
        headers = {"x-api-key": user[1], "Idempotency-Key": "k-503"}
        first = await client.post("/api/v1/task", json=BODY, headers=headers)
        body = await first.json()
        assert first.status == 503 and first.headers["Retry-After"] == "1"
        assert body["detail"]["replicas_wanted"] == 1 and body["detail"]["replicas_acked"] == 0
        plain = await make_client()  # the option off: the same key returns the task the first call wrote
        again = await plain.post("/api/v1/task", json=BODY, headers=headers)
        assert again.status == 200
        ids = await redis.zrange(keys.user_tasks(user[0]), 0, -1)
        assert [i.decode() for i in ids] == [(await again.json())["data"]["task_id"]]
    finally:
        await durable.close()


async def test_repeating_create_task_with_the_same_id_changes_nothing(services, user, redis, keys):
    from taskgate.models import CreateTaskRequest

    record = await services.users.get(user[0])
    view = await services.tasks.create(record, CreateTaskRequest(**BODY))
    task_id = view["task_id"]
    wallet_before = await redis.hgetall(keys.wallet(user[0]))
    fields = await redis.hgetall(keys.task(task_id))
    # replay the script call exactly as create made it (same task id), as a retry after a lost reply would
    flow = fields[b"flow"].decode()
    result = await services.scripts.call(
        "create_task",
        keys=[
            keys.task(task_id),
            keys.user(user[0]),
            keys.wallet(user[0]),
            keys.ledger(user[0]),
            keys.user_tasks(user[0]),
            keys.idempotency(user[0], "unused"),
            keys.flow(flow),
        ],
        args=[
            keys.base,
            "",
            task_id,
            json.dumps({"user": user[0], "pool": "ppu", "lane": "fast"}),
            "mj_quota",
            100,
            "0",
            flow,
            0,
            "",
            "",
        ],
    )
    assert result[1:] == [task_id, 0]  # a duplicate
    assert await redis.hgetall(keys.wallet(user[0])) == wallet_before
    assert await redis.llen(keys.flow(flow)) == 1
