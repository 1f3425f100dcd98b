"""The API's create and read paths: Redis round trips per request (a read is one, a create with a
cached key is one), the API-key cache behind a create (a revoked or rotated key, or a changed plan,
is seen by the very next create), and a created task's view built without reading it back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio.connection import AbstractConnection

from taskgate.api.auth import KEY_CACHE, KeyCache
from taskgate.models import CreateTaskRequest
from taskgate.services import Services
from taskgate.users.service import UserRecord, digest

IMAGINE = {
    "model": "midjourney",
    "task_type": "imagine",
    "input": {"prompt": "a red kite", "process_mode": "fast"},
}


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts what every Redis connection of this process sends (a pipeline is one send)."""
    counter = [0]
    send = AbstractConnection.send_packed_command

    async def counted(self: AbstractConnection, *a: Any, **kw: Any) -> None:
        counter[0] += 1
        await send(self, *a, **kw)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    yield counter


async def _call(client: Any, method: str, path: str, key: str, **kw: Any) -> tuple[int, dict[str, Any]]:
    async with client.request(method, path, headers={"x-api-key": key}, **kw) as resp:
        return resp.status, await resp.json()


async def test_a_read_is_one_round_trip_and_a_cached_create_too(client, services, round_trips):
    _, key = await services.users.create("developer", wallets={"mj_quota": 1000})
    status, created = await _call(client, "POST", "/api/v1/task", key, json=IMAGINE)  # warms scripts, cache
    assert status == 200
    task_id = created["data"]["task_id"]
    await _call(client, "GET", f"/api/v1/task/{task_id}", key)  # loads read_task
    round_trips[0] = 0
    status, read = await _call(client, "GET", f"/api/v1/task/{task_id}", key)
    assert status == 200 and round_trips[0] == 1
    assert read["data"] == created["data"]  # the create's view is the stored task's
    round_trips[0] = 0
    status, _ = await _call(client, "POST", "/api/v1/task", key, json=IMAGINE)
    assert status == 200 and round_trips[0] == 1


async def test_reads_refuse_wrong_keys_and_other_users_tasks(client, services):
    _, key = await services.users.create("developer", wallets={"mj_quota": 1000})
    _, other = await services.users.create("developer")
    task_id = (await _call(client, "POST", "/api/v1/task", key, json=IMAGINE))[1]["data"]["task_id"]
    assert (await _call(client, "GET", f"/api/v1/task/{task_id}", other))[0] == 404
    assert (await _call(client, "GET", f"/api/v1/task/{task_id}", "tg_" + "x" * 43))[0] == 401
    assert (await _call(client, "GET", f"/api/v1/task/{task_id}", "nope"))[0] == 401
    assert (await _call(client, "GET", "/api/v1/task/not_a_task_id!", "nope"))[0] == 401  # 401 before 404
    await services.redis.delete(services.keys.user((await services.users.authenticate(key)).user_id))
    assert (await _call(client, "GET", f"/api/v1/task/{task_id}", key))[0] == 401  # the user is gone


async def test_revoked_key_is_refused_by_the_next_create_and_read(client, services, redis, keys):
    user_id, key = await services.users.create("developer", wallets={"mj_quota": 1000})
    task_id = (await _call(client, "POST", "/api/v1/task", key, json=IMAGINE))[1]["data"]["task_id"]
    await services.users.revoke_key(key)  # the API process still holds the key in its cache
    status, body = await _call(client, "POST", "/api/v1/task", key, json=IMAGINE)
    assert status == 401 and body["code"] == 401
    assert await redis.zcard(keys.user_tasks(user_id)) == 1
    assert (await _call(client, "GET", f"/api/v1/task/{task_id}", key))[0] == 401


async def test_rotated_key_works_at_once_and_the_old_one_stops(client, services, redis, keys):
    user_id, old = await services.users.create("developer", wallets={"mj_quota": 1000})
    assert (await _call(client, "POST", "/api/v1/task", old, json=IMAGINE))[0] == 200
    new = await services.users.rotate_key(user_id)
    assert (await _call(client, "POST", "/api/v1/task", old, json=IMAGINE))[0] == 401
    status, body = await _call(client, "POST", "/api/v1/task", new, json=IMAGINE)
    assert status == 200
    assert (await _call(client, "GET", f"/api/v1/task/{body['data']['task_id']}", new))[0] == 200
    assert await redis.zcard(keys.user_tasks(user_id)) == 2


async def test_a_changed_plan_prices_the_next_create(client, services):
    """The cached user is on the free plan (no task progress); the plan changes behind the API's back;
    the next create is refused by the script as stale, retried with the fresh user, and shows it."""
    user_id, key = await services.users.create("free", wallets={"mj_quota": 1000})
    first = (await _call(client, "POST", "/api/v1/task", key, json=IMAGINE))[1]["data"]
    assert first["output"] is None  # free: no task_progress feature
    await services.users.update(user_id, plan="developer")
    status, body = await _call(client, "POST", "/api/v1/task", key, json=IMAGINE)
    assert status == 200 and body["data"]["output"] == {"progress": 0}
    cached = client.server.app[KEY_CACHE].get(digest(key))
    assert cached is not None and cached.plan == "developer"


async def test_banned_prompt_with_a_revoked_cached_key_counts_nothing(client, services, redis, keys):
    user_id, key = await services.users.create("free", wallets={"mj_quota": 1000})
    assert (await _call(client, "POST", "/api/v1/task", key, json=IMAGINE))[0] == 200  # cached now
    await services.users.revoke_key(key)
    banned = {**IMAGINE, "input": {"prompt": "a nude statue", "process_mode": "fast"}}
    assert services.catalogue.check_prompt(banned["input"]) is not None
    assert (await _call(client, "POST", "/api/v1/task", key, json=banned))[0] == 401
    daily = [k async for k in redis.scan_iter(match=keys.daily(user_id, "*"))]
    assert daily == []  # no incorrect task was counted


async def test_without_the_cache_every_create_looks_the_key_up(make_client, services, round_trips):
    client = await make_client(auth_cache_s=0)
    _, key = await services.users.create("developer", wallets={"mj_quota": 1000})
    assert (await _call(client, "POST", "/api/v1/task", key, json=IMAGINE))[0] == 200
    round_trips[0] = 0
    assert (await _call(client, "POST", "/api/v1/task", key, json=IMAGINE))[0] == 200
    assert round_trips[0] == 3  # key, user, create


def test_key_cache_entries_expire_and_the_oldest_go_first(monkeypatch: pytest.MonkeyPatch):
    now = [100.0]
    monkeypatch.setattr("taskgate.api.auth.time.monotonic", lambda: now[0])
    cache = KeyCache(ttl_s=5, max_entries=2)
    users = [UserRecord(user_id=f"u{i}", plan="free") for i in range(3)]
    cache.put("a", users[0])
    now[0] += 4.9
    assert cache.get("a") == users[0]
    now[0] += 0.2  # 5.1 s after it was cached: gone, whatever was read in between
    assert cache.get("a") is None
    cache.put("a", users[0])
    cache.put("b", users[1])
    assert cache.get("a") == users[0]  # a is now the most recently used
    cache.put("c", users[2])
    assert cache.get("b") is None and cache.get("a") == users[0] and cache.get("c") == users[2]
    cache.drop("a")
    assert cache.get("a") is None
    off = KeyCache(ttl_s=0)
    off.put("a", users[0])
    assert off.get("a") is None


@pytest.mark.parametrize(
    ("plan", "service_mode", "request_input"),
    [
        ("developer", "", {"prompt": "a red kite", "process_mode": "fast"}),
        ("free", "", {"prompt": "a red kite", "process_mode": "relax"}),
        ("developer", "private", {"prompt": "a red kite", "process_mode": "fast"}),  # BYOA: nothing frozen
    ],
)
async def test_created_view_equals_the_stored_task(
    services: Services, plan: str, service_mode: str, request_input: dict[str, Any]
):
    user_id, _ = await services.users.create(plan, wallets={"mj_quota": 1000}, service_mode=service_mode)
    user = await services.users.get(user_id)
    req = CreateTaskRequest.model_validate({**IMAGINE, "input": request_input})
    created = await services.tasks.create(user, req)
    assert created == await services.tasks.get(user_id, created["task_id"])
    assert (created["meta"]["usage"]["frozen"] > 0) is (service_mode == "")
    assert created["meta"]["is_using_private_pool"] is (service_mode == "private")


async def test_the_one_round_trip_read_equals_the_service_view(client, services, redis, keys):
    """Wait reasons (the flow's, a set-aside task's own) and staged-at-the-cap read as before."""
    user_id, key = await services.users.create("free", wallets={"mj_quota": 1000})
    task_id = (await _call(client, "POST", "/api/v1/task", key, json=IMAGINE))[1]["data"]["task_id"]
    task_key = keys.task(task_id)

    async def same() -> dict[str, Any]:
        status, body = await _call(client, "GET", f"/api/v1/task/{task_id}", key)
        assert status == 200 and body["data"] == await services.tasks.get(user_id, task_id)
        return dict(body["data"])

    assert (await same())["meta"]["wait_reason"] == "queued"
    flow = (await redis.hget(task_key, "flow")).decode()
    await redis.hset(keys.flow_wait(), flow, "waiting_for_capacity")
    assert (await same())["meta"]["wait_reason"] == "waiting_for_capacity"
    await redis.hset(task_key, mapping={"aside": "1", "wait": "only_excluded_accounts_left"})
    assert (await same())["detail"] == "only_excluded_accounts_left"
    for i in range(3):  # the free plan's cap
        await redis.zadd(keys.user_leases(user_id), {f"other-{i}": 9e15})
    assert (await same())["status"] == "staged"
    await redis.hset(task_key, "status", "processing")
    view = await same()
    assert view["status"] == "processing" and view["meta"]["wait_reason"] is None
