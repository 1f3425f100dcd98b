"""The task read path: one Redis round trip for a read (a pending task takes one more, for its flow's
wait reason), none after the create script; the view it returns is the same as before (ownership,
staged at the cap, progress by plan)."""

from __future__ import annotations

from typing import Any

import pytest

from taskgate.errors import NotFound
from taskgate.models import CreateTaskRequest
from taskgate.services import Services

REQUEST = CreateTaskRequest(
    model="midjourney", task_type="imagine", input={"prompt": "a quiet harbour", "process_mode": "fast"}
)


class CountingRedis:
    """Delegates to a redis client and counts round trips (direct commands and pipeline executes)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.round_trips = inner, 0

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        pipe, outer = self.inner.pipeline(*args, **kwargs), self
        execute = pipe.execute

        async def counted_execute(*a: Any, **kw: Any) -> Any:
            outer.round_trips += 1
            return await execute(*a, **kw)

        pipe.execute = counted_execute
        return pipe

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        async def counted(*a: Any, **kw: Any) -> Any:
            self.round_trips += 1
            return await attr(*a, **kw)

        return counted


async def test_a_read_is_one_round_trip(services: Services):
    user_id, _ = await services.users.create("developer", wallets={"mj_quota": 1000})
    user = await services.users.get(user_id)
    created = await services.tasks.create(user, REQUEST)
    counting = CountingRedis(services.redis)
    services.tasks.redis = counting  # type: ignore[assignment]
    view = await services.tasks.get(user_id, created["task_id"])
    assert counting.round_trips == 2  # the task, user and running count; then its flow's wait reason
    assert view == created and view["status"] == "pending"
    await services.redis.hset(services.keys.task(created["task_id"]), "status", "processing")
    counting.round_trips = 0
    assert (await services.tasks.get(user_id, created["task_id"]))["status"] == "processing"
    assert counting.round_trips == 1


async def test_create_needs_no_read_back(services: Services):
    user_id, _ = await services.users.create("developer", wallets={"mj_quota": 1000})
    user = await services.users.get(user_id)
    counting = CountingRedis(services.redis)
    services.tasks.redis = counting  # type: ignore[assignment]
    services.tasks.scripts.redis = services.redis  # the create script itself is not counted here
    await services.tasks.create(user, REQUEST)
    assert counting.round_trips == 0  # the create script returns what the view needs


async def test_another_users_task_is_not_found(services: Services):
    owner, _ = await services.users.create("developer", wallets={"mj_quota": 1000})
    other, _ = await services.users.create("developer")
    created = await services.tasks.create(await services.users.get(owner), REQUEST)
    with pytest.raises(NotFound):
        await services.tasks.get(other, created["task_id"])
    with pytest.raises(NotFound):
        await services.tasks.get(owner, "no-such-task")


async def test_pending_task_at_the_cap_reads_as_staged(services: Services):
    user_id, _ = await services.users.create("free", wallets={"mj_quota": 1000})
    created = await services.tasks.create(await services.users.get(user_id), REQUEST)
    for i in range(3):  # the free plan's cap: three PPU tasks processing
        await services.redis.zadd(services.keys.user_leases(user_id), {f"other-{i}": 9e15})
    view = await services.tasks.get(user_id, created["task_id"])
    assert view["status"] == "staged"
    assert view == await services.tasks.view(await services.tasks.load(created["task_id"]))
