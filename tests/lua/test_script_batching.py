"""Script runs asked for in one loop turn share one pipeline, each keeping its own outcome
(taskgate/store/batching.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from taskgate.errors import NotDurable, NotFound
from taskgate.store import script_api
from taskgate.store.batching import MAX_BATCH, ScriptBatcher
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts
from tests.redis_server import free_port

INCR = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
FAILS = "return redis.error_reply('refused ' .. ARGV[1])"


class CountingRedis:
    """The batcher's client with a count of the pipelines it opened."""

    def __init__(self, redis: Redis) -> None:
        self.redis, self.pipelines = redis, 0

    def pipeline(self, transaction: bool = True) -> Any:
        self.pipelines += 1
        return self.redis.pipeline(transaction=transaction)

    async def script_load(self, text: str) -> str:
        return str(await self.redis.script_load(text))


async def loaded(redis: Redis, text: str) -> Any:
    """A registered script Redis already knows (no NOSCRIPT round on its first run)."""
    await redis.script_load(text)
    return redis.register_script(text)


def counting(redis: Redis, **kwargs: Any) -> tuple[ScriptBatcher, CountingRedis]:
    client = CountingRedis(redis)
    return ScriptBatcher(client, **kwargs), client  # type: ignore[arg-type]


async def test_runs_of_one_turn_share_one_pipeline_and_keep_their_own_replies(redis, keys):
    batcher, client = counting(redis)
    incr = await loaded(redis, INCR)
    key = f"{keys.base}:counter"
    replies = await asyncio.gather(*(batcher.submit(incr, [key], [n]) for n in range(1, 101)))
    assert client.pipelines == 1
    assert sorted(replies) == sorted(sum(range(1, n + 1)) for n in range(1, 101))  # each saw its own run
    assert int(await redis.get(key)) == sum(range(1, 101))


async def test_a_lone_run_is_sent_without_waiting_for_company(redis, keys):
    batcher, client = counting(redis)
    incr = await loaded(redis, INCR)
    assert await asyncio.wait_for(batcher.submit(incr, [f"{keys.base}:lone"], [5]), 5) == 5
    assert await batcher.submit(incr, [f"{keys.base}:lone"], [1]) == 6
    assert client.pipelines == 2


async def test_a_burst_larger_than_a_batch_goes_as_several_pipelines(redis, keys):
    batcher, client = counting(redis)
    incr = await loaded(redis, INCR)
    key = f"{keys.base}:burst"
    n = MAX_BATCH * 2 + 10
    await asyncio.gather(*(batcher.submit(incr, [key], [1]) for _ in range(n)))
    assert client.pipelines == 3
    assert int(await redis.get(key)) == n


async def test_an_error_reply_fails_only_its_own_run(redis, keys):
    batcher, _ = counting(redis)
    incr, fails = await loaded(redis, INCR), await loaded(redis, FAILS)
    key = f"{keys.base}:mixed"
    results = await asyncio.gather(
        batcher.submit(incr, [key], [1]),
        batcher.submit(fails, [], ["this one"]),
        batcher.submit(incr, [key], [1]),
        return_exceptions=True,
    )
    assert results[0] == 1 and results[2] == 2
    assert isinstance(results[1], ResponseError) and "refused this one" in str(results[1])


async def test_scripts_redis_forgot_are_loaded_and_their_runs_sent_again(redis, keys):
    batcher, client = counting(redis)
    incr = await loaded(redis, INCR)
    key = f"{keys.base}:reloaded"
    await batcher.submit(incr, [key], [1])  # known to Redis now
    await redis.script_flush()  # as after a restart or a failover to a fresh master
    replies = await asyncio.gather(*(batcher.submit(incr, [key], [1]) for _ in range(10)))
    assert sorted(replies) == list(range(2, 12))  # each ran exactly once
    assert client.pipelines == 3  # the first run, the batch refused with NOSCRIPT, the batch again


async def test_a_failed_connection_fails_every_run_of_the_batch():
    dead = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    try:
        batcher = ScriptBatcher(dead)
        script = dead.register_script(INCR)
        results = await asyncio.gather(
            *(batcher.submit(script, ["k"], [1]) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, RedisConnectionError) for r in results)
    finally:
        await dead.aclose()


async def test_a_cancelled_caller_leaves_the_other_runs_of_its_batch_alone(redis, keys):
    batcher, _ = counting(redis)
    incr = await loaded(redis, INCR)
    key = f"{keys.base}:cancel"
    first = asyncio.ensure_future(batcher.submit(incr, [key], [1]))
    second = asyncio.ensure_future(batcher.submit(incr, [key], [1]))
    await asyncio.sleep(0)  # both are queued
    first.cancel()
    assert await second in (1, 2)
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_too_few_replicas_fail_the_durable_runs_only(redis, keys):
    batcher, _ = counting(redis, min_replicas=1, wait_timeout_ms=10)  # this Redis has no replica
    incr = await loaded(redis, INCR)
    key = f"{keys.base}:durable"
    durable, plain = await asyncio.gather(
        batcher.submit(incr, [key], [1], durable=True),
        batcher.submit(incr, [key], [1]),
        return_exceptions=True,
    )
    assert isinstance(durable, NotDurable)
    assert plain in (1, 2)
    assert int(await redis.get(key)) == 2  # the durable run's effect stands, as with a lone call


async def test_concurrent_typed_calls_share_a_pipeline_through_scripts(redis, scripts: Scripts, keys: Keys):
    await redis.script_load(scripts.sources["finish_task"].text)
    client = CountingRedis(redis)
    scripts.batcher.redis = client  # type: ignore[assignment]
    ids = [f"missing-{i}" for i in range(20)]
    results = await asyncio.gather(
        *(
            script_api.finish_task(scripts, keys, task_id=i, attempt=1, outcome="completed", max_attempts=3)
            for i in ids
        ),
        return_exceptions=True,
    )
    assert client.pipelines == 1
    assert [(r.what, r.ident) for r in results if isinstance(r, NotFound)] == [("task", i) for i in ids]
