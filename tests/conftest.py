"""Shared fixtures: one throwaway redis-server per test session; a fresh key prefix per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from taskgate.settings import Settings
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts
from tests.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("TASKGATE_TEST_REDIS_URL")
    if url:
        yield url
        return
    server = RedisServer()
    server.start()
    try:
        yield server.url
    finally:
        server.cleanup()


@pytest.fixture
def prefix() -> str:
    return f"t:{uuid4().hex[:12]}"


@pytest.fixture
def keys(prefix: str) -> Keys:
    return Keys(prefix)


@pytest.fixture
def settings(redis_url: str, prefix: str) -> Settings:
    return Settings(
        redis_url=redis_url,
        key_prefix=prefix,
        admin_token="test-admin-token",  # type: ignore[arg-type]
        webhook_allow_private=True,
        log_profile="console",
    )


@pytest.fixture
async def redis(redis_url: str, keys: Keys) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        async for key in client.scan_iter(match=keys.pattern(), count=1000):
            await client.delete(key)
        await client.aclose()


@pytest.fixture
async def scripts(redis: Redis) -> Scripts:
    return Scripts(redis)
