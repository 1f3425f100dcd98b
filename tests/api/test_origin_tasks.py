"""Follow-up tasks may only name the caller's own, completed task of a type they apply to
(hardening); every refusal comes before anything is frozen or queued."""

from __future__ import annotations

import uuid

import pytest

from taskgate.tasks.origin import FOLLOW_UP_ORIGINS
from tests.api.conftest import snapshot

EXTRA = {
    "upscale": {"index": "1"},
    "variation": {"index": "1"},
    "reroll": {},
    "seed": {},
    "pan": {"direction": "up"},
    "outpaint": {},
    "inpaint": {"mask": "bWFzaw=="},
}
FOLLOW_UPS = sorted(t for _, t in FOLLOW_UP_ORIGINS)


@pytest.fixture
async def users(services):
    return [await services.users.create("developer", wallets={"mj_quota": 1000}) for _ in range(2)]


async def _post(client, key: str, task_type: str, task_input: dict) -> tuple[int, dict]:
    body = {"model": "midjourney", "task_type": task_type, "input": {"process_mode": "fast", **task_input}}
    resp = await client.post("/api/v1/task", json=body, headers={"x-api-key": key})
    return resp.status, await resp.json()


async def _task(
    client, redis, keys, key: str, task_type: str, *, status: str = "completed", origin: str | None = None
) -> str:
    """A task of ``task_type`` (an imagine as its origin when it needs one), forced to ``status``."""
    if task_type == "imagine":
        code, body = await _post(client, key, "imagine", {"prompt": "a cat"})
    else:
        origin = origin or await _task(client, redis, keys, key, "imagine")
        if task_type in ("pan", "outpaint", "inpaint"):
            origin = await _task(client, redis, keys, key, "upscale", origin=origin)
        code, body = await _post(client, key, task_type, {"origin_task_id": origin, **EXTRA[task_type]})
    assert code == 200, body
    task_id = body["data"]["task_id"]
    await redis.hset(keys.task(task_id), "status", status)
    return task_id


async def _refused(client, redis, keys, key, task_type, origin) -> tuple[int, dict]:
    before = await snapshot(redis, keys)
    code, body = await _post(client, key, task_type, {"origin_task_id": origin, **EXTRA[task_type]})
    assert await snapshot(redis, keys) == before  # nothing frozen, queued or counted
    return code, body


@pytest.mark.parametrize("task_type", FOLLOW_UPS)
async def test_unknown_or_foreign_origin_is_404(client, redis, keys, users, task_type):
    (_, mine), (_, other) = users
    foreign = await _task(client, redis, keys, other, "imagine")
    for origin in (str(uuid.uuid4()), foreign):
        code, body = await _refused(client, redis, keys, mine, task_type, origin)
        assert code == 404 and body["code"] == 404 and origin in body["message"]
        assert body["detail"] == {"field": "input.origin_task_id"}


@pytest.mark.parametrize("task_type", FOLLOW_UPS)
@pytest.mark.parametrize("status", ["pending", "processing", "failed"])
async def test_origin_must_be_completed(client, redis, keys, users, task_type, status):
    key = users[0][1]
    allowed = FOLLOW_UP_ORIGINS[("midjourney", task_type)]
    origin = await _task(
        client, redis, keys, key, "imagine" if "imagine" in allowed else "upscale", status=status
    )
    code, body = await _refused(client, redis, keys, key, task_type, origin)
    assert code == 400 and body["detail"]["field"] == "input.origin_task_id"
    assert status in body["message"] and "completed" in body["message"]


@pytest.mark.parametrize("task_type", FOLLOW_UPS)
async def test_origin_must_be_a_type_the_follow_up_applies_to(client, redis, keys, users, task_type):
    key = users[0][1]
    allowed = FOLLOW_UP_ORIGINS[("midjourney", task_type)]
    wrong = "upscale" if "upscale" not in allowed else "describe"
    if wrong == "describe":
        code, body = await _post(client, key, "describe", {"image_url": "https://example.com/a.png"})
        assert code == 200, body
        origin = body["data"]["task_id"]
        await redis.hset(keys.task(origin), "status", "completed")
    else:
        origin = await _task(client, redis, keys, key, "upscale")
    code, body = await _refused(client, redis, keys, key, task_type, origin)
    assert code == 400 and body["detail"]["field"] == "input.origin_task_id"
    assert wrong in body["message"]


@pytest.mark.parametrize("task_type", FOLLOW_UPS)
async def test_own_completed_origin_is_accepted(client, redis, keys, users, task_type):
    task_id = await _task(client, redis, keys, users[0][1], task_type, status="pending")
    assert await redis.hget(keys.task(task_id), "task_type") == task_type.encode()
