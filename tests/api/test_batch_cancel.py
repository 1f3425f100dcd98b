"""Batch cancel is all or nothing per request (hardening: batch cancel): every id is checked first; an
unknown id or another customer's is a 404 naming it and cancels nothing, refunds nothing."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import snapshot

IMAGINE = {
    "model": "midjourney",
    "task_type": "imagine",
    "input": {"prompt": "a cat", "process_mode": "fast"},
}


@pytest.fixture
async def users(services):
    return [await services.users.create("developer", wallets={"mj_quota": 100}) for _ in range(2)]


async def _create(client, key: str) -> str:
    resp = await client.post("/api/v1/task", json=IMAGINE, headers={"x-api-key": key})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["data"]["task_id"]


@pytest.mark.parametrize("bad", ["unknown", "foreign"])
async def test_one_bad_id_cancels_nothing(client, users, redis, keys, bad):
    (_, mine_key), (_, other_key) = users
    first, last = await _create(client, mine_key), await _create(client, mine_key)
    bad_id = str(uuid.uuid4()) if bad == "unknown" else await _create(client, other_key)
    before = await snapshot(redis, keys)
    resp = await client.post(
        "/api/v1/task/cancel", json={"task_ids": [first, bad_id, last]}, headers={"x-api-key": mine_key}
    )
    body = await resp.json()
    assert resp.status == 404 and body["code"] == 404 and bad_id in body["message"]
    assert await snapshot(redis, keys) == before  # nothing cancelled, refunded or queued differently
    for task_id in (first, last):
        resp = await client.get(f"/api/v1/task/{task_id}", headers={"x-api-key": mine_key})
        assert (await resp.json())["data"]["status"] in ("pending", "staged")


async def test_all_good_ids_are_cancelled_and_refunded_once(client, users, services):
    user_id, key = users[0]
    ids = [await _create(client, key) for _ in range(2)]
    frozen = (await services.wallets.balances(user_id))["mj_quota"]["frozen"]
    assert frozen > 0
    resp = await client.post(
        "/api/v1/task/cancel", json={"task_ids": [ids[0], ids[1], ids[0]]}, headers={"x-api-key": key}
    )
    data = (await resp.json())["data"]
    assert resp.status == 200 and [t["task_id"] for t in data] == ids  # a repeated id answered once
    assert all(t["status"] == "failed" and t["error"]["message"] == "cancelled" for t in data)
    wallet = (await services.wallets.balances(user_id))["mj_quota"]
    assert wallet["frozen"] == 0 and wallet["available"] == 100 and wallet["consumed"] == 0
