from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from taskgate.api.app import create_app
from taskgate.services import Services, build_services
from taskgate.settings import Settings


@pytest.fixture
async def services(settings: Settings, redis) -> AsyncIterator[Services]:  # redis: prefix cleanup
    s = await build_services(settings)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def client(settings: Settings, services: Services) -> AsyncIterator[TestClient]:
    app = create_app(settings.model_copy(update={"body_limit_bytes": 4096}), services)
    async with TestClient(TestServer(app)) as c:
        yield c


async def snapshot(redis, keys) -> dict:
    out = {}
    async for key in redis.scan_iter(match=keys.pattern()):
        out[key] = await redis.dump(key)
    return out
