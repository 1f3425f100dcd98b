"""HTTP edges: streamed bodies over the limit, unexpected errors, health without Redis, request ids,
metrics per route, cancel-batch and header validation, the admin API switched off."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from taskgate.services import assemble
from tests.api.conftest import BODY_LIMIT, snapshot
from tests.redis_server import free_port

IMAGINE = {
    "model": "midjourney",
    "task_type": "imagine",
    "input": {"prompt": "a cat", "process_mode": "fast"},
}
TOKEN = {"x-admin-token": "test-admin-token"}


@pytest.fixture
async def user(services):
    return await services.users.create("developer", wallets={"mj_quota": 100})


async def test_streamed_body_over_the_limit_is_413(client, user, redis, keys):
    async def chunks():
        yield b'{"model": "midjourney", "task_type": "imagine", "input": {"prompt": "'
        for _ in range(4):
            yield b"x" * 2048
        yield b'"}}'

    before = await snapshot(redis, keys)
    resp = await client.post(
        "/api/v1/task", data=chunks(), headers={"x-api-key": user[1], "content-type": "application/json"}
    )
    assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
    body = await resp.json()
    assert resp.status == 413 and body["code"] == 413 and body["data"] is None
    assert body["detail"] == {"limit_bytes": BODY_LIMIT}
    assert await snapshot(redis, keys) == before


async def test_body_of_exactly_the_limit_is_read(client, user):
    payload = json.dumps(IMAGINE).encode()
    padded = payload[:-1] + b" " * (BODY_LIMIT - len(payload)) + b"}"
    assert len(padded) == BODY_LIMIT
    resp = await client.post(
        "/api/v1/task", data=padded, headers={"x-api-key": user[1], "content-type": "application/json"}
    )
    assert resp.status == 200, await resp.text()


async def test_unexpected_error_is_a_500_envelope_without_traceback(client, user, services, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(services.tasks, "get_for_key", broken)
    resp = await client.get(
        "/api/v1/task/0b0e6c55-3c1c-4d5b-9b43-1b6f2e2f7e11",
        headers={"x-api-key": user[1], "x-request-id": "req-123"},
    )
    text = await resp.text()
    assert resp.status == 500 and resp.headers["x-request-id"] == "req-123"
    assert json.loads(text) == {
        "code": 500,
        "data": None,
        "message": "internal error",
        "detail": {"request_id": "req-123"},
    }
    assert "Traceback" not in text and "secret internals" not in text


async def test_request_id_is_made_when_missing(client):
    resp = await client.get("/healthz")
    assert len(resp.headers["x-request-id"]) == 32


async def test_health_without_redis(make_client, settings):
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    client = await make_client(assemble(settings, dead))
    try:
        assert (await client.get("/healthz")).status == 200
        resp = await client.get("/readyz")
        body = await resp.json()
        assert resp.status == 503 and body["code"] == 503 and "Redis" in body["message"]
        metrics = await client.get("/metrics")
        assert metrics.status == 200 and "taskgate_http_requests_total" in await metrics.text()
    finally:
        await dead.aclose()


async def test_metrics_count_requests_per_route_and_status(client, user):
    await client.get("/api/v1/account", headers={"x-api-key": user[1]})
    await client.get("/api/v1/account", headers={"x-api-key": "tg_wrong"})
    await client.get("/api/v1/task/abc", headers={"x-api-key": user[1]})
    text = await (await client.get("/metrics")).text()
    assert 'taskgate_http_requests_total{method="GET",route="/api/v1/account",status="200"} 1.0' in text
    assert 'taskgate_http_requests_total{method="GET",route="/api/v1/account",status="401"} 1.0' in text
    assert 'route="/api/v1/task/{task_id}",status="404"' in text  # the pattern, not the id
    assert 'taskgate_http_request_seconds_count{method="GET",route="/api/v1/account"} 2.0' in text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"task_ids": []}, "task_ids"),
        ({"task_ids": [f"{i:032x}" for i in range(101)]}, "task_ids"),
        ({"task_ids": "abc"}, "task_ids"),
        ({}, "task_ids"),
    ],
)
async def test_cancel_batch_validation(client, user, redis, keys, body, field):
    before = await snapshot(redis, keys)
    resp = await client.post("/api/v1/task/cancel", json=body, headers={"x-api-key": user[1]})
    data = await resp.json()
    assert resp.status == 400 and field in data["message"] and data["detail"]["field"] == field
    assert await snapshot(redis, keys) == before


async def test_batch_cancel_and_odd_task_ids(client, user):
    headers = {"x-api-key": user[1]}
    ids = []
    for _ in range(2):
        resp = await client.post("/api/v1/task", json=IMAGINE, headers=headers)
        ids.append((await resp.json())["data"]["task_id"])
    resp = await client.post("/api/v1/task/cancel", json={"task_ids": ids}, headers=headers)
    data = (await resp.json())["data"]
    assert resp.status == 200 and [t["task_id"] for t in data] == ids
    assert all(t["status"] == "failed" and t["error"]["message"] == "cancelled" for t in data)
    for odd in ("not-a-uuid!", "a:b", "*"):
        resp = await client.get(f"/api/v1/task/{odd}", headers=headers)
        assert resp.status == 404 and (await resp.json())["code"] == 404


async def test_idempotency_key_must_be_reasonable(client, user, redis, keys):
    before = await snapshot(redis, keys)
    resp = await client.post(
        "/api/v1/task", json=IMAGINE, headers={"x-api-key": user[1], "Idempotency-Key": "k" * 300}
    )
    assert resp.status == 400 and "Idempotency-Key" in (await resp.json())["message"]
    assert await snapshot(redis, keys) == before


async def test_page_size_follows_settings(make_client, user):
    client = await make_client(page_size_max=5)
    headers = {"x-api-key": user[1]}
    assert (await client.get("/api/v1/tasks?size=5", headers=headers)).status == 200
    resp = await client.get("/api/v1/tasks?size=6", headers=headers)
    assert resp.status == 400 and "size" in (await resp.json())["message"]
    resp = await client.get("/api/v1/tasks?page=zero", headers=headers)
    assert resp.status == 400 and "page" in (await resp.json())["message"]


async def test_admin_api_is_off_without_a_token(make_client, redis, keys):
    client = await make_client(admin_token=SecretStr(""))  # model_copy does not validate
    before = await snapshot(redis, keys)
    for headers in ({}, {"x-admin-token": ""}, TOKEN):
        resp = await client.post("/admin/v1/users", json={"plan": "free"}, headers=headers)
        body = await resp.json()
        assert resp.status == 401 and "disabled" in body["message"]
    assert await snapshot(redis, keys) == before
