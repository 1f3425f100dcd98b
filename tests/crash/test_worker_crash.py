"""Workers as real processes: kill -9 mid-task (the lease expires, the task resumes its upstream job
by id on the same account: no second submit, one settlement) and SIGTERM (graceful: running
attempts finish or are handed back; exit 0)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter

import aiohttp
import pytest

N_TASKS = 12


def start_worker(settings, log_path, grace_s=10.0):
    env = {
        **os.environ,
        "TASKGATE_WORKER_SHUTDOWN_GRACE_S": str(grace_s),
        "TASKGATE_REDIS_URL": settings.redis_url,
        "TASKGATE_KEY_PREFIX": settings.key_prefix,
        "TASKGATE_LEASE_MS": str(settings.lease_ms),
        "TASKGATE_RENEW_INTERVAL_S": "0.3",
        "TASKGATE_UPSTREAM_POLL_INTERVAL_S": "0.05",
        "TASKGATE_LOG_PROFILE": "json",
        "TASKGATE_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    log = open(log_path, "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-m", "taskgate", "worker"], env=env, stdout=log, stderr=log)
    proc.log = log  # type: ignore[attr-defined]
    return proc


async def stop_proc(proc, sig=signal.SIGTERM, timeout=30):
    """Signal and wait without blocking the event loop (the simulator it polls runs in this loop)."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        code = await asyncio.to_thread(proc.wait, timeout)
    finally:
        proc.log.close()
    return code


@pytest.fixture
async def cluster(system_settings, tmp_path):
    """Simulator, API and scheduler in this process; workers are started by the tests."""
    from aiohttp import web

    from taskgate.api.app import create_app
    from taskgate.scheduler.runner import run_scheduler
    from taskgate.services import build_services
    from taskgate.sim.server import create_sim_app

    s = system_settings.model_copy(update={"lease_ms": 1500, "sweep_interval_s": 0.2})
    services = await build_services(s)
    runners = []
    for app, port in ((create_sim_app(s), s.sim_port), (create_app(s), s.api_port)):
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
    stop = asyncio.Event()
    scheduler = asyncio.create_task(run_scheduler(s, stop))
    try:
        yield s, services, tmp_path
    finally:
        stop.set()
        await scheduler
        for runner in runners:
            await runner.cleanup()
        await services.close()


async def submit_all(settings, services, duration):
    from taskgate.models import CreateTaskRequest
    from taskgate.pool.registry import AccountSpec

    user_id, _ = await services.users.create("premium", wallets={"mj_quota": 1000})
    await services.accounts.add(
        AccountSpec(
            owner="shared",
            provider="sim",
            api_key="k1",
            base_url=f"http://127.0.0.1:{settings.sim_port}",
            capacity=50,
        )
    )
    user = await services.users.get(user_id)
    ids = []
    for i in range(N_TASKS):
        req = CreateTaskRequest(
            model="midjourney",
            task_type="imagine",
            input={"prompt": f"crash {i} [sim duration={duration}]", "process_mode": "fast"},
        )
        ids.append((await services.tasks.create(user, req))["task_id"])
    return user_id, ids


async def sim_stats(settings):
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{settings.sim_port}/sim/stats") as resp,
    ):
        return await resp.json()


async def statuses(services, ids):
    return [(await services.tasks.load(t)).status for t in ids]


async def wait_until(predicate, timeout_s):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def check_settled_once(services, user_id, ids):
    kinds = Counter()
    for e in await services.wallets.ledger(user_id):
        kinds[(e["task"], e["kind"])] += 1
    for t in ids:
        assert kinds[(t, "freeze")] == 1 and kinds[(t, "charge")] + kinds[(t, "refund")] == 1, t
    balances = (await services.wallets.balances(user_id))["mj_quota"]
    assert balances["frozen"] == 0
    assert await services.redis.zcard(services.keys.leases()) == 0


@pytest.mark.slow
async def test_kill_9_worker_mid_task_resumes_without_double_submit(cluster):
    settings, services, tmp = cluster
    user_id, ids = await submit_all(settings, services, duration=1.5)
    worker = start_worker(settings, tmp / "w1.log")
    try:
        await wait_until(lambda: _all_submitted(services, ids), 30)
    finally:
        await stop_proc(worker, signal.SIGKILL)
    second = start_worker(settings, tmp / "w2.log")
    try:
        await wait_until(lambda: _all_final(services, ids), 60)
    finally:
        assert await stop_proc(second) == 0
    assert set(await statuses(services, ids)) == {"completed"}
    attempts = [(await services.tasks.load(t)).attempt for t in ids]
    assert all(a >= 2 for a in attempts)  # each was re-dispatched after its lease expired
    assert (await sim_stats(settings))["jobs_submitted"] == N_TASKS  # resumed by upstream id, never twice
    await check_settled_once(services, user_id, ids)


@pytest.mark.slow
async def test_sigterm_lets_running_attempts_finish(cluster):
    settings, services, tmp = cluster
    user_id, ids = await submit_all(settings, services, duration=1.0)
    worker = start_worker(settings, tmp / "w.log")
    try:
        await wait_until(lambda: _all_submitted(services, ids), 30)
    finally:
        code = await stop_proc(worker, signal.SIGTERM)
    assert code == 0
    assert set(await statuses(services, ids)) == {"completed"}  # finished within the grace period
    await check_settled_once(services, user_id, ids)


async def _all_submitted(services, ids):
    records = [await services.tasks.load(t) for t in ids]
    return all(r.upstream_id for r in records)


async def _all_final(services, ids):
    return all(s in ("completed", "failed") for s in await statuses(services, ids))


@pytest.mark.slow
async def test_sigterm_hands_back_long_attempts_which_resume_elsewhere(cluster):
    settings, services, tmp = cluster
    user_id, ids = await submit_all(settings, services, duration=6.0)
    first = start_worker(settings, tmp / "w1.log", grace_s=0.2)
    try:
        await wait_until(lambda: _all_submitted(services, ids), 30)
    finally:
        assert await stop_proc(first, signal.SIGTERM) == 0
    after_stop = await statuses(services, ids)
    assert "failed" not in after_stop
    assert {"pending", "processing"} & set(after_stop)  # some attempts were handed back, not finished
    second = start_worker(settings, tmp / "w2.log")
    try:
        await wait_until(lambda: _all_final(services, ids), 60)
    finally:
        assert await stop_proc(second) == 0
    assert set(await statuses(services, ids)) == {"completed"}
    assert (await sim_stats(settings))["jobs_submitted"] == N_TASKS  # resumed, not submitted again
    await check_settled_once(services, user_id, ids)
