"""create_user / rotate_api_key / revoke_api_key: each change of a user and its keys is one script."""

from __future__ import annotations

import asyncio

import pytest

from taskgate.errors import NotFound, ScriptError, Unauthorized
from taskgate.users.service import digest
from tests.api.conftest import snapshot


async def live_keys(services, user_id: str) -> set[str]:
    """Digests whose api key resolves to the user, and the digests the user's index holds."""
    redis, keys = services.redis, services.keys
    indexed = {d.decode() for d in await redis.smembers(keys.user_api_keys(user_id))}
    live = set()
    async for key in redis.scan_iter(match=keys.api_key("*")):
        if (await redis.get(key)) == user_id.encode():
            live.add(key.decode().rsplit(":", 1)[1])
    assert live == indexed
    return live


async def test_concurrent_rotations_leave_exactly_one_key(services):
    user_id, first = await services.users.create("free")
    new = await asyncio.gather(*(services.users.rotate_key(user_id) for _ in range(20)))
    live = await live_keys(services, user_id)
    assert len(live) == 1 and live.pop() in {digest(k) for k in new}
    with pytest.raises(Unauthorized):
        await services.users.authenticate(first)


async def test_rotate_unknown_user_names_the_user_and_writes_nothing(services, redis, keys):
    before = await snapshot(redis, keys)
    with pytest.raises(NotFound) as err:
        await services.users.rotate_key("nobody")
    assert "user" in str(err.value.message) and "task" not in str(err.value.message)
    assert await snapshot(redis, keys) == before


async def test_revoke_unknown_key_names_the_key_and_writes_nothing(services, redis, keys):
    await services.users.create("free")
    before = await snapshot(redis, keys)
    with pytest.raises(NotFound) as err:
        await services.users.revoke_key("tg_not-a-key")
    assert "api key" in str(err.value.message)
    assert await snapshot(redis, keys) == before


async def test_revoke_removes_the_key_and_its_index_entry(services):
    user_id, api_key = await services.users.create("developer")
    second = await services.users.rotate_key(user_id)
    await services.users.revoke_key(second)
    assert await live_keys(services, user_id) == set()
    assert api_key != second


async def test_create_user_refuses_an_existing_user(services, redis, keys):
    user_id, _ = await services.users.create("free")
    before = await snapshot(redis, keys)
    with pytest.raises(ScriptError):
        await services.scripts.call(
            "create_user",
            keys=[keys.user(user_id), keys.users(), keys.api_key("d"), keys.user_api_keys(user_id)],
            args=[user_id, "d", "plan", "free"],
        )
    assert await snapshot(redis, keys) == before
