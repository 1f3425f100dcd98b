"""The worker's and scheduler's probe server: /healthz follows the loop's heartbeat; /readyz needs
Redis to answer and to be a master (a replica or a dead Redis is not ready)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from taskgate.metrics.probes import Liveness, create_probe_app, serve_probes
from taskgate.metrics.process import ProcessMetrics
from tests.redis_server import RedisServer, free_port


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def probe_client(redis: Redis, liveness: Liveness) -> TestClient:
    client = TestClient(TestServer(create_probe_app(ProcessMetrics("worker"), liveness, redis)))
    await client.start_server()
    return client


@pytest.fixture
async def replica(redis_url: str) -> AsyncIterator[Redis]:
    server = RedisServer()
    server.start()
    client = Redis.from_url(server.url)
    master_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    await client.execute_command("REPLICAOF", "127.0.0.1", master_port)
    try:
        yield client
    finally:
        await client.aclose()
        server.cleanup()


async def test_healthz_follows_the_loop_heartbeat(redis: Redis) -> None:
    clock = FakeClock()
    liveness = Liveness(30.0, clock)
    client = await probe_client(redis, liveness)
    try:
        assert (await client.get("/healthz")).status == 200
        clock.now += 31
        resp = await client.get("/healthz")
        body = await resp.json()
        assert resp.status == 503 and "loop" in body["message"] and body["detail"]["age_s"] == 31
        liveness.beat()
        assert (await client.get("/healthz")).status == 200
    finally:
        await client.close()


async def test_readyz_needs_a_reachable_master(redis: Redis, replica: Redis) -> None:
    live = Liveness(30.0)
    for target, status, words in ((redis, 200, "ready"), (replica, 503, "not a master")):
        client = await probe_client(target, live)
        try:
            resp = await client.get("/readyz")
            body = await resp.json()
            assert resp.status == status and words in (body["message"] + str(body["data"])), body
        finally:
            await client.close()
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    client = await probe_client(dead, live)
    try:
        resp = await client.get("/readyz")
        assert resp.status == 503 and "does not answer" in (await resp.json())["message"]
    finally:
        await client.close()
        await dead.aclose()


async def test_metrics_page_of_a_role(redis: Redis) -> None:
    client = await probe_client(redis, Liveness(30.0))
    try:
        resp = await client.get("/metrics")
        text = await resp.text()
        assert resp.status == 200 and "taskgate_build_info{python=" in text and 'role="worker"' in text
        assert "taskgate_worker_max_jobs" in text and "process_cpu_seconds_total" in text
    finally:
        await client.close()


async def test_a_taken_probe_port_does_not_stop_the_role(redis: Redis) -> None:
    port = free_port()
    app = create_probe_app(ProcessMetrics("worker"), Liveness(30.0), redis)
    first = await serve_probes(app, "127.0.0.1", port)
    try:
        second = await serve_probes(
            create_probe_app(ProcessMetrics("worker"), Liveness(30.0), redis), "127.0.0.1", port
        )
        assert first is not None and second is None
    finally:
        assert first is not None
        await first.cleanup()
