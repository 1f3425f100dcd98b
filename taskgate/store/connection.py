"""Redis connections."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from taskgate.settings import Settings


async def create_redis(settings: Settings, *, attempts: int = 20, delay_s: float = 0.25) -> Redis:
    """A client with decoded responses off (scripts decode), pinged with a short retry."""
    redis: Redis = Redis.from_url(settings.redis_url, health_check_interval=30)
    for attempt in range(attempts):
        try:
            await redis.ping()
            return redis
        except (RedisConnectionError, OSError):
            if attempt == attempts - 1:
                await redis.aclose()
                raise
            await asyncio.sleep(delay_s)
    raise AssertionError("unreachable")


async def redis_answers(url: str, timeout_s: float = 1.0) -> bool:
    redis = Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        return bool(await redis.ping())
    except (RedisConnectionError, OSError):
        return False
    finally:
        await redis.aclose()
