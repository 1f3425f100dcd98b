"""A real Sentinel set (master, replica, three Sentinels) for the module, and a test's settings on it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from taskgate.bench.sentinel_set import SentinelSet
from taskgate.settings import Settings


@pytest.fixture(scope="module")
def sentinel_set() -> Iterator[SentinelSet]:
    cluster = SentinelSet()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        gc.collect()  # connections the killed master cut are collected here, not in later tests


@pytest.fixture
def ha_settings(settings: Settings, sentinel_set: SentinelSet) -> Settings:
    """The test's settings through Sentinel, with the durability option on (one replica)."""
    return settings.model_copy(
        update={
            "redis_url": sentinel_set.url,
            "redis_min_replicas_ack": 1,
            "redis_wait_timeout_ms": 2000,
            "redis_retry_s": 30.0,
        }
    )
