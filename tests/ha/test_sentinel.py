"""Through a real Sentinel set: connecting, readiness, WAIT durability, and failovers (SIGKILL of
the master, SENTINEL FAILOVER) during creates, dispatches and settlements with nothing
acknowledged lost."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from arq.connections import create_pool
from redis.asyncio import Redis

from taskgate.api.app import create_app
from taskgate.services import Services, build_services
from taskgate.settings import Settings
from taskgate.store.connection import arq_redis_settings, redis_ready
from tests.redis_server import free_port
from tests.system import System, running_system

pytestmark = [
    pytest.mark.slow,
    # connections cut by a killed master are garbage-collected wherever the GC runs
    pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"),
]
BODY = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "a fox", "process_mode": "fast"}}


@pytest.fixture
async def ha_services(ha_settings: Settings) -> AsyncIterator[Services]:
    services = await build_services(ha_settings)
    try:
        yield services
    finally:
        async for key in services.redis.scan_iter(match=services.keys.pattern(), count=1000):
            await services.redis.delete(key)
        await services.close()


async def test_every_client_connects_through_sentinel(ha_settings, ha_services, sentinel_set):
    assert await redis_ready(ha_services.redis) == (True, "master")
    user_id, _ = await ha_services.users.create("free", wallets={"credits": 100})
    master = Redis.from_url(sentinel_set.node_url(sentinel_set.master_index()))
    try:  # the write went to the node the sentinels call master
        assert await master.exists(ha_services.keys.user(user_id)) == 1
    finally:
        await master.aclose()
    arq = await create_pool(arq_redis_settings(ha_settings))
    try:
        assert await arq.ping()
    finally:
        await arq.aclose()
        for sentinel in arq.connection_pool.sentinel_manager.sentinels:  # type: ignore[attr-defined]
            await sentinel.aclose()


async def test_readiness_is_false_on_a_replica(sentinel_set):
    replica = Redis.from_url(sentinel_set.node_url(1 - sentinel_set.master_index()))
    try:
        ok, reason = await redis_ready(replica)
        assert not ok and "slave" in reason
    finally:
        await replica.aclose()


async def test_create_waits_for_the_replica_or_answers_503(ha_settings, ha_services, sentinel_set):
    user_id, api_key = await ha_services.users.create("free", wallets={"mj_quota": 1000})
    settings = ha_settings.model_copy(update={"redis_wait_timeout_ms": 300})
    async with TestClient(TestServer(create_app(settings))) as client:  # the app owns its services
        headers = {"x-api-key": api_key, "Idempotency-Key": "wait-1"}
        replica = sentinel_set.nodes[1 - sentinel_set.master_index()]
        replica.signal(signal.SIGSTOP)
        try:
            resp = await client.post("/api/v1/task", json=BODY, headers=headers)
            body = await resp.json()
        finally:
            replica.signal(signal.SIGCONT)
        assert resp.status == 503 and resp.headers["Retry-After"] == "1", body
        assert body["code"] == 503 and "Idempotency-Key" in body["message"]
        assert body["detail"]["replicas_acked"] == 0
        again = await client.post("/api/v1/task", json=BODY, headers=headers)
        assert again.status == 200
        task_id = (await again.json())["data"]["task_id"]
    freezes = [e for e in await ha_services.wallets.ledger(user_id) if e["kind"] == "freeze"]
    assert [e["task"] for e in freezes] == [task_id]  # the retry returned the first task, frozen once


async def _create(system: System, api_key: str, i: int) -> str:
    """Create with an Idempotency-Key, retrying (503, timeouts, refused) until acknowledged."""
    body = {**BODY, "input": {"prompt": f"fox {i} [sim duration=0.4]", "process_mode": "fast"}}
    headers = {"x-api-key": api_key, "Idempotency-Key": f"ha-{i}"}
    while True:
        try:
            async with system.http.post(
                system.api_url + "/api/v1/task",
                json=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=10),
            ) as resp:
                if resp.status == 200:
                    return str((await resp.json())["data"]["task_id"])
                assert resp.status == 503, await resp.text()  # never a 500 while failing over
                assert resp.headers["Retry-After"] == "1"
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.2)


async def _final(services: Services, ids: list[str], timeout_s: float) -> dict[str, str]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    statuses: dict[str, str] = {}
    while asyncio.get_running_loop().time() < deadline:
        try:
            for task_id in ids:
                raw = await services.redis.hget(services.keys.task(task_id), "status")
                statuses[task_id] = raw.decode() if raw else "missing"
        except Exception:  # failing over: read again
            await asyncio.sleep(0.2)
            continue
        if all(s in ("completed", "failed") for s in statuses.values()):
            break
        await asyncio.sleep(0.2)
    return statuses


@pytest.mark.timeout(240)
async def test_failovers_during_creates_dispatches_and_settlements_lose_nothing(ha_settings, sentinel_set):
    s = ha_settings.model_copy(
        update={
            "api_port": free_port(),
            "sim_port": free_port(),
            "sim_latency_fast_s": 0.1,
            "renew_interval_s": 0.3,
            "lease_ms": 3000,
            "sweep_interval_s": 0.2,
            "upstream_poll_interval_s": 0.02,
            "max_attempts": 50,
        }
    )
    async with running_system(s, stop_timeout_s=60, tolerate_role_errors=True) as system:
        user_id, api_key = await system.user("premium", wallets={"mj_quota": 100_000})
        await system.shared_account(capacity=10, models=["midjourney"])
        creates = asyncio.gather(*(_create(system, api_key, i) for i in range(60)))
        await asyncio.sleep(1.0)  # creates, dispatches and settlements under way
        killed = await asyncio.to_thread(sentinel_set.kill_master)
        await asyncio.to_thread(sentinel_set.restart, killed)  # back as a replica: WAIT can succeed again
        await asyncio.sleep(1.0)
        await asyncio.to_thread(sentinel_set.failover)  # a manual failover as well
        ids = await asyncio.wait_for(creates, 120)
        final = await _final(system.services, ids, 120)
        assert Counter(final.values()) == Counter({"completed": len(ids)}), final
        settles = Counter(
            e["task"]
            for e in await system.services.wallets.ledger(user_id, count=100_000)
            if e["kind"] in ("charge", "penalty", "refund")
        )
        assert set(settles) == set(ids) and set(settles.values()) == {1}  # each settled exactly once
        wallet = (await system.services.wallets.balances(user_id))["mj_quota"]
        assert wallet["frozen"] == 0
        assert wallet["available"] + wallet["consumed"] == 100_000
    gc.collect()  # connections the killed master cut are collected inside this test
    assert sentinel_set.failovers >= 2
