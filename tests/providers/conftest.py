from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from pydantic import SecretStr

from taskgate.providers.base import AccountAccess
from tests.providers.fake_goapi import FakeGoapi
from tests.sim.harness import Sim, running_sim

SECRET = "sk-live-DO-NOT-LEAK-0123456789"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    async with running_sim() as running:
        yield running


@pytest.fixture
async def goapi() -> AsyncIterator[FakeGoapi]:
    fake = FakeGoapi()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


def access_for(base_url: str, provider: str, key: str = SECRET) -> AccountAccess:
    return AccountAccess(account_id="acct-1", provider=provider, base_url=base_url, api_key=SecretStr(key))
