"""The §4 contract over HTTP: envelope, auth, refusals that change nothing, idempotency."""

from __future__ import annotations

import pytest

from tests.api.conftest import snapshot

IMAGINE = {
    "model": "midjourney",
    "task_type": "imagine",
    "input": {"prompt": "a cat", "process_mode": "fast"},
}


@pytest.fixture
async def user(services):
    return await services.users.create("developer", wallets={"mj_quota": 100})


async def post(client, path, key, **kw):
    resp = await client.post(path, headers={"x-api-key": key, **kw.pop("headers", {})}, **kw)
    return resp.status, await resp.json()


async def test_create_returns_the_task_in_the_envelope(client, user):
    status, body = await post(client, "/api/v1/task", user[1], json=IMAGINE)
    assert status == 200 and body["code"] == 200 and body["message"] == "success"
    assert body["data"]["status"] == "pending" and body["data"]["meta"]["usage"]["frozen"] == 14


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"task_type": "imagine", "input": {"prompt": "x"}}, "model"),
        ({"model": "midjourney", "task_type": "nope", "input": {"prompt": "x"}}, "task_type"),
        ({"model": "nope", "task_type": "imagine", "input": {"prompt": "x"}}, "model"),
        ({"model": "midjourney", "task_type": "imagine", "input": {"prompt": ""}}, "input.prompt"),
        (
            {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "x", "process_mode": "warp"}},
            "input.process_mode",
        ),
        ({"model": "midjourney", "task_type": "imagine", "input": "text"}, "input"),
        (
            {"model": "midjourney", "task_type": "describe", "input": {"image_url": "ftp://x/y.png"}},
            "input.image_url",
        ),
    ],
)
async def test_bad_input_is_400_naming_the_field_and_changes_nothing(
    client, user, redis, keys, payload, field
):
    before = await snapshot(redis, keys)
    status, body = await post(client, "/api/v1/task", user[1], json=payload)
    assert status == 400 and body["code"] == 400
    assert field in body["message"], body["message"]
    assert await snapshot(redis, keys) == before


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", "\u00ff".encode("latin-1")])
async def test_malformed_bodies_are_400(client, user, redis, keys, raw):
    before = await snapshot(redis, keys)
    status, body = await post(
        client, "/api/v1/task", user[1], data=raw, headers={"content-type": "application/json"}
    )
    assert status == 400 and "body" in body["message"]
    assert await snapshot(redis, keys) == before


async def test_body_over_the_limit_is_413(client, user, redis, keys):
    before = await snapshot(redis, keys)
    big = {**IMAGINE, "input": {"prompt": "x" * 10_000}}
    status, body = await post(client, "/api/v1/task", user[1], json=big)
    assert status == 413 and body["code"] == 413
    assert await snapshot(redis, keys) == before


@pytest.mark.parametrize("key", [None, "", "tg_wrong", "nonsense"])
async def test_missing_or_wrong_key_is_401(client, redis, keys, key):
    before = await snapshot(redis, keys)
    headers = {} if key is None else {"x-api-key": key}
    resp = await client.post("/api/v1/task", json=IMAGINE, headers=headers)
    assert resp.status == 401 and (await resp.json())["code"] == 401
    resp = await client.get("/api/v1/account", headers=headers)
    assert resp.status == 401
    assert await snapshot(redis, keys) == before


async def test_unknown_and_other_users_task_are_404(client, user, services):
    _, other_key = await services.users.create("free")
    _, body = await post(client, "/api/v1/task", user[1], json=IMAGINE)
    task_id = body["data"]["task_id"]
    for key, tid in ((other_key, task_id), (user[1], "00000000-0000-0000-0000-000000000000")):
        resp = await client.get(f"/api/v1/task/{tid}", headers={"x-api-key": key})
        assert resp.status == 404 and (await resp.json())["code"] == 404
    status, _ = await post(client, f"/api/v1/task/{task_id}/cancel", other_key)
    assert status == 404
    resp = await client.get(f"/api/v1/task/{task_id}", headers={"x-api-key": user[1]})
    assert (await resp.json())["data"]["status"] == "pending"


async def test_idempotency_key_returns_the_same_task(client, user, services):
    headers = {"Idempotency-Key": "order-42"}
    _, first = await post(client, "/api/v1/task", user[1], json=IMAGINE, headers=headers)
    _, second = await post(client, "/api/v1/task", user[1], json=IMAGINE, headers=headers)
    assert first["data"]["task_id"] == second["data"]["task_id"]
    balances = await services.wallets.balances(user[0])
    assert balances["mj_quota"]["frozen"] == 14


async def test_not_enough_credits_is_402_and_names_amount_and_unit(client, services, redis, keys):
    _, key = await services.users.create("developer", wallets={"mj_quota": 5})
    before = await snapshot(redis, keys)
    status, body = await post(client, "/api/v1/task", key, json=IMAGINE)
    assert status == 402 and "14" in body["message"] and "mj_quota" in body["message"]
    assert await snapshot(redis, keys) == before


async def test_banned_prompt_is_400_and_counts_as_incorrect(client, user, services):
    payload = {**IMAGINE, "input": {"prompt": "a nude statue", "process_mode": "fast"}}
    word = services.catalogue.check_prompt(payload["input"])
    assert word is not None
    status, body = await post(client, "/api/v1/task", user[1], json=payload)
    assert status == 400 and "input.prompt" in body["message"]
    account = await (await client.get("/api/v1/account", headers={"x-api-key": user[1]})).json()
    assert account["data"]["incorrect"]["today"] == 1


async def test_list_and_account(client, user):
    for _ in range(3):
        await post(client, "/api/v1/task", user[1], json=IMAGINE)
    resp = await client.get("/api/v1/tasks?page=1&size=2", headers={"x-api-key": user[1]})
    body = (await resp.json())["data"]
    assert body["total"] == 3 and len(body["tasks"]) == 2
    resp = await client.get("/api/v1/tasks?size=1000", headers={"x-api-key": user[1]})
    assert resp.status == 400
    account = (await (await client.get("/api/v1/account", headers={"x-api-key": user[1]})).json())["data"]
    assert account["plan"] == "developer" and account["concurrency"] == {"running": 0, "limit": 9}
    assert account["wallets"]["mj_quota"] == {"available": 58, "frozen": 42, "consumed": 0}
    assert account["relax"]["allowance"] == 500 and account["incorrect"]["limit"] == 60


async def test_unknown_route_and_method_use_the_envelope(client):
    resp = await client.get("/api/v1/nothing")
    assert resp.status == 404 and (await resp.json())["code"] == 404
    resp = await client.delete("/api/v1/task")
    assert resp.status == 405 and (await resp.json())["code"] == 405


async def test_health_and_metrics(client):
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    text = await (await client.get("/metrics")).text()
    assert "taskgate_http_requests_total" in text and "taskgate_ready_flows" in text


async def test_skip_prompt_check_only_on_plans_with_the_feature(client, services):
    payload = {
        **IMAGINE,
        "input": {"prompt": "a nude statue", "process_mode": "fast", "skip_prompt_check": True},
    }
    _, paid_key = await services.users.create("developer", wallets={"mj_quota": 100})
    _, free_key = await services.users.create("free", wallets={"mj_quota": 100})
    status, _ = await post(client, "/api/v1/task", paid_key, json=payload)
    assert status == 200  # B8: the developer plan may skip the checker
    status, body = await post(client, "/api/v1/task", free_key, json=payload)
    assert status == 400 and "banned word" in body["message"]
