"""Fixtures for account health tests: small, round health settings so cooldowns read 10 s, 20 s ..."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from taskgate.pool.health import AccountHealth
from taskgate.pool.registry import AccountRegistry
from taskgate.providers.base import AccountAccess, ErrorKind, ProviderError
from taskgate.settings import Settings
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts

T0 = 1_800_000_000_000  # a fixed clock for the scripts' `now` override


@pytest.fixture
def health_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "health_window_ms": 60_000,
            "health_threshold": 3,
            "cooldown_base_ms": 10_000,
            "cooldown_max_ms": 80_000,
        }
    )


@pytest.fixture
def health(redis: Redis, scripts: Scripts, keys: Keys, health_settings: Settings) -> AccountHealth:
    return AccountHealth(redis, scripts, keys, health_settings)


@pytest.fixture
def registry(redis: Redis, scripts: Scripts, keys: Keys, settings: Settings) -> AccountRegistry:
    return AccountRegistry(redis, scripts, keys, settings)


async def account_hash(redis: Redis, keys: Keys, account_id: str) -> dict[str, str]:
    raw = await redis.hgetall(keys.account(account_id))
    return {k.decode(): v.decode() for k, v in raw.items()}


async def state_of(redis: Redis, keys: Keys, account_id: str) -> str:
    return (await account_hash(redis, keys, account_id))["state"]


class FakeProbe:
    """A Provider whose probe passes, or fails with `kind`; it records which accounts it probed."""

    def __init__(self, kind: ErrorKind | None = None) -> None:
        self.kind, self.probed = kind, []

    async def probe(self, access: AccountAccess) -> None:
        self.probed.append(access.account_id)
        if self.kind is not None:
            raise ProviderError(self.kind, f"probe says {self.kind}")
