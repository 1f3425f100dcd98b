from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from taskgate.api.app import create_app
from taskgate.services import Services, build_services
from taskgate.settings import Settings
from taskgate.store.keys import Keys

BODY_LIMIT = 4096
ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def services(settings: Settings, redis: Redis) -> AsyncIterator[Services]:  # redis: prefix cleanup
    s = await build_services(settings)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def make_client(settings: Settings, services: Services) -> AsyncIterator[ClientFactory]:
    """A real aiohttp server on loopback for an app built from ``settings`` with the given changes."""
    async with AsyncExitStack() as stack:

        async def make(services_: Services | None = None, **changes: Any) -> TestClient:
            app = create_app(
                settings.model_copy(update={"body_limit_bytes": BODY_LIMIT, **changes}), services_ or services
            )
            return await stack.enter_async_context(TestClient(TestServer(app)))

        yield make


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient:
    return await make_client()


async def snapshot(redis: Redis, keys: Keys) -> dict[bytes, Any]:
    """Every key of the test's prefix with its serialized value (DUMP): equal snapshots = no change."""
    out = {}
    async for key in redis.scan_iter(match=keys.pattern()):
        out[key] = await redis.dump(key)
    return out


async def all_values(redis: Redis, keys: Keys) -> bytes:
    """Every key name and every stored value of the prefix, read in full (uncompressed) by type."""
    parts: list[bytes] = []
    async for key in redis.scan_iter(match=keys.pattern()):
        parts.append(key)
        kind = (await redis.type(key)).decode()
        if kind == "string":
            parts.append(await redis.get(key))
        elif kind == "hash":
            parts.extend(b for kv in (await redis.hgetall(key)).items() for b in kv)
        elif kind == "set":
            parts.extend(await redis.smembers(key))
        elif kind == "zset":
            parts.extend(m for m, _ in await redis.zrange(key, 0, -1, withscores=True))
        elif kind == "list":
            parts.extend(await redis.lrange(key, 0, -1))
        elif kind == "stream":
            for _, fields in await redis.xrange(key):
                parts.extend(b for kv in fields.items() for b in kv)
        else:
            raise AssertionError(f"unexpected type {kind} of {key!r}")
    return b"\n".join(parts)
