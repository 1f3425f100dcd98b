"""Workers as real processes: kill -9 mid-task (the lease expires, the task resumes its upstream job
by id on the same account: no second submit, one settlement) and SIGTERM (graceful: running
attempts finish or are handed back; exit 0).

Robust to a loaded machine: each worker is waited for until it is ready (its arq health-check key
is written from its main loop, after its signal handlers are installed and its Redis pool is up)
before work is submitted or a signal is sent; attempt limits are sized from the lease and the
readiness bound, so lease expiries while no worker is up yet cannot fail a task; every wait polls
for its condition with a generous upper bound."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
from collections import Counter

import aiohttp
import pytest
from arq.constants import health_check_key_suffix

from tests.system import running_system

N_TASKS = 12
READY_TIMEOUT_S = 120.0  # upper bound for a worker process to start on a loaded machine
WAIT_TIMEOUT_S = 180.0  # upper bound for any other condition polled here
SHORT_LEASE_MS = 1500  # kill -9: a lost attempt is recovered when its lease expires
LONG_LEASE_MS = 10_000  # SIGTERM tests: no lease needs to expire, so none should under load


async def start_worker(settings, services, log_path, grace_s=60.0):
    """Start ``taskgate worker`` and return once it is ready to take jobs (see the module doc)."""
    health_key = services.keys.arq_queue() + health_check_key_suffix
    await services.redis.delete(health_key)  # written again by the new worker's first loop
    env = {
        **os.environ,
        "TASKGATE_WORKER_SHUTDOWN_GRACE_S": str(grace_s),
        "TASKGATE_REDIS_URL": settings.redis_url,
        "TASKGATE_KEY_PREFIX": settings.key_prefix,
        "TASKGATE_LEASE_MS": str(settings.lease_ms),
        "TASKGATE_MAX_ATTEMPTS": str(settings.max_attempts),
        "TASKGATE_RENEW_INTERVAL_S": "0.3",
        "TASKGATE_UPSTREAM_POLL_INTERVAL_S": "0.05",
        "TASKGATE_LOG_PROFILE": "json",
        "TASKGATE_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    log = open(log_path, "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-m", "taskgate", "worker"], env=env, stdout=log, stderr=log)
    proc.log = log  # type: ignore[attr-defined]

    async def ready():
        assert proc.poll() is None, f"worker exited {proc.returncode} while starting: {log_path.read_text()}"
        return bool(await services.redis.exists(health_key))

    try:
        await wait_until(ready, READY_TIMEOUT_S)
    except BaseException:
        await stop_proc(proc, signal.SIGKILL)
        raise
    return proc


async def stop_proc(proc, sig=signal.SIGTERM, timeout=WAIT_TIMEOUT_S):
    """Signal and wait without blocking the event loop (the simulator it polls runs in this loop)."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        code = await asyncio.to_thread(proc.wait, timeout)
    finally:
        proc.log.close()
    return code


@pytest.fixture
async def cluster(system_settings, tmp_path, request):
    """Simulator, API and scheduler in this process; workers are started by the tests. The lease
    is ``request.param`` (default LONG_LEASE_MS); attempts are enough to outlast the lease expiring
    again and again for as long as a worker may take to start."""
    lease_ms = getattr(request, "param", LONG_LEASE_MS)
    max_attempts = math.ceil(READY_TIMEOUT_S * 1000 / lease_ms) + 3
    s = system_settings.model_copy(
        update={"lease_ms": lease_ms, "max_attempts": max_attempts, "sweep_interval_s": 0.2}
    )
    async with running_system(s, worker=False) as system:
        yield s, system.services, tmp_path


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


async def check_submitted_once(settings):
    """One upstream job per task and no second submit request at all: the simulator would
    deduplicate a resubmission by its idempotency key, so ``jobs_submitted`` alone cannot tell."""
    stats = await sim_stats(settings)
    assert (stats["jobs_submitted"], stats["submit_requests"]) == (N_TASKS, N_TASKS), stats


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
@pytest.mark.parametrize("cluster", [SHORT_LEASE_MS], indirect=True)
async def test_kill_9_worker_mid_task_resumes_without_double_submit(cluster):
    settings, services, tmp = cluster
    worker = await start_worker(settings, services, tmp / "w1.log")
    try:
        user_id, ids = await submit_all(settings, services, duration=6.0)
        await wait_until(lambda: _all_submitted(services, ids), WAIT_TIMEOUT_S)
    finally:
        await stop_proc(worker, signal.SIGKILL)
    at_kill = await statuses(services, ids)
    running = [t for t, status in zip(ids, at_kill, strict=True) if status == "processing"]
    assert running, at_kill  # the kill hit attempts in flight (the upstream jobs run for 6 s)
    second = await start_worker(settings, services, tmp / "w2.log")
    try:
        await wait_until(lambda: _all_final(services, ids), WAIT_TIMEOUT_S)
    finally:
        assert await stop_proc(second) == 0
    assert set(await statuses(services, ids)) == {"completed"}
    attempts = [(await services.tasks.load(t)).attempt for t in running]
    assert all(a >= 2 for a in attempts)  # each was re-dispatched after its lease expired
    await check_submitted_once(settings)  # resumed by upstream id, never submitted again
    await check_settled_once(services, user_id, ids)


@pytest.mark.slow
async def test_sigterm_lets_running_attempts_finish(cluster):
    settings, services, tmp = cluster
    worker = await start_worker(settings, services, tmp / "w.log")
    try:
        user_id, ids = await submit_all(settings, services, duration=1.0)
        await wait_until(lambda: _all_submitted(services, ids), WAIT_TIMEOUT_S)
    finally:
        code = await stop_proc(worker, signal.SIGTERM)
    assert code == 0
    assert set(await statuses(services, ids)) == {"completed"}  # finished within the grace period
    await check_submitted_once(settings)
    await check_settled_once(services, user_id, ids)


async def _all_submitted(services, ids):
    records = [await services.tasks.load(t) for t in ids]
    return all(r.upstream_id for r in records)


def _handed_back(log_path):
    """Task ids a worker logged as handed back (JSON log lines)."""
    events = (json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{"))
    return {e["task_id"] for e in events if e.get("event") == "attempt_handed_back"}


async def _all_final(services, ids):
    return all(s in ("completed", "failed") for s in await statuses(services, ids))


@pytest.mark.slow
async def test_sigterm_hands_back_long_attempts_which_resume_elsewhere(cluster):
    settings, services, tmp = cluster
    first = await start_worker(settings, services, tmp / "w1.log", grace_s=0.2)
    try:
        user_id, ids = await submit_all(settings, services, duration=6.0)
        await wait_until(lambda: _all_submitted(services, ids), WAIT_TIMEOUT_S)
    finally:
        assert await stop_proc(first, signal.SIGTERM) == 0
    after_stop = await statuses(services, ids)
    assert "failed" not in after_stop
    unfinished = {t for t, status in zip(ids, after_stop, strict=True) if status != "completed"}
    assert unfinished, after_stop  # the grace period (0.2 s) ended before the 6 s upstream jobs
    assert unfinished <= _handed_back(tmp / "w1.log")  # handed back at once, not left to their leases
    for t in unfinished:  # so each is pending again or already re-dispatched (10 s leases: not reaped)
        record = await services.tasks.load(t)
        assert record.status == "pending" or record.attempt >= 2, (t, record.status, record.attempt)
    second = await start_worker(settings, services, tmp / "w2.log")
    try:
        await wait_until(lambda: _all_final(services, ids), WAIT_TIMEOUT_S)
    finally:
        assert await stop_proc(second) == 0
    assert set(await statuses(services, ids)) == {"completed"}
    await check_submitted_once(settings)  # resumed by upstream id, never submitted again
    await check_settled_once(services, user_id, ids)
