"""A task over HTTP through the real scheduler, worker and simulator (DESIGN.md §4, S1, B2)."""

from __future__ import annotations

import asyncio
import re

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


async def test_task_goes_pending_processing_completed(system):
    user_id, key = await system.user("developer", wallets={"mj_quota": 100})
    await system.shared_account(capacity=2)
    status, body = await system.imagine(key, "a lighthouse [sim duration=0.3]")
    assert status == 200 and body["code"] == 200 and body["message"] == "success"
    task = body["data"]
    assert task["status"] in ("pending", "processing")
    seen = {task["status"]}
    while task["status"] not in ("completed", "failed"):
        await asyncio.sleep(0.02)
        task = (await system.call("GET", f"/api/v1/task/{task['task_id']}", key))[1]["data"]
        seen.add(task["status"])
    assert task["status"] == "completed" and "processing" in seen
    for field in (
        "task_id",
        "model",
        "task_type",
        "status",
        "config",
        "input",
        "output",
        "meta",
        "detail",
        "logs",
        "error",
    ):
        assert field in task
    assert task["output"]["image_url"].startswith("http") and task["output"]["progress"] == 100
    meta = task["meta"]
    for stamp in ("created_at", "started_at", "ended_at"):
        assert RFC3339.match(meta[stamp]), meta[stamp]
    assert meta["usage"] == {"type": "mj_quota", "frozen": 14, "consume": 14}
    assert meta["is_using_private_pool"] is False
    assert task["error"]["code"] == 0
    _, account = await system.call("GET", "/api/v1/account", key)
    assert account["data"]["wallets"]["mj_quota"]["available"] == 86


async def test_incorrect_outcome_fails_and_refunds(system):
    _, key = await system.user("developer", wallets={"mj_quota": 100})
    await system.shared_account(capacity=2)
    _, body = await system.imagine(key, "x [sim duration=0.05 outcome=incorrect]")
    task = await system.wait_final(key, body["data"]["task_id"])
    assert task["status"] == "failed" and task["error"]["code"] != 0 and task["error"]["message"]
    assert task["meta"]["usage"]["consume"] == 0
    _, account = await system.call("GET", "/api/v1/account", key)
    assert account["data"]["wallets"]["mj_quota"]["available"] == 100
    assert account["data"]["incorrect"]["today"] == 1


async def test_free_user_never_more_than_three_processing(system):
    user_id, key = await system.user("free", wallets={"mj_quota": 1000})
    await system.shared_account(capacity=20)
    ids = []
    for i in range(30):
        _, body = await system.imagine(key, f"cat {i} [sim duration=0.1]")
        ids.append(body["data"]["task_id"])
    peak, redis, keys = 0, system.services.redis, system.services.keys
    while True:
        pipe = redis.pipeline(transaction=False)
        for t in ids:
            pipe.hget(keys.task(t), "status")
        statuses = [s.decode() for s in await pipe.execute()]
        peak = max(peak, statuses.count("processing"))
        if all(s in ("completed", "failed") for s in statuses):
            break
        await asyncio.sleep(0.01)
    assert peak == 3
    assert statuses.count("completed") == 30


async def test_staged_status_when_user_at_cap(system):
    _, key = await system.user("free", wallets={"mj_quota": 1000})
    await system.shared_account(capacity=20)
    ids = []
    for i in range(5):
        _, body = await system.imagine(key, f"dog {i} [sim duration=1]")
        ids.append(body["data"]["task_id"])
    deadline = asyncio.get_running_loop().time() + 10
    while True:  # poll until the scheduler has filled the cap (no fixed sleep before the exact check)
        statuses = [(await system.call("GET", f"/api/v1/task/{t}", key))[1]["data"]["status"] for t in ids]
        if statuses.count("processing") == 3 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.02)
    assert statuses.count("processing") == 3 and statuses.count("staged") == 2


async def test_cancel_pending_task_over_http(system):
    _, key = await system.user("free", wallets={"mj_quota": 100})  # no account: stays pending
    _, body = await system.imagine(key, "wait")
    task_id = body["data"]["task_id"]
    status, body = await system.call("POST", f"/api/v1/task/{task_id}/cancel", key)
    assert status == 200
    task = (await system.call("GET", f"/api/v1/task/{task_id}", key))[1]["data"]
    assert task["status"] == "failed" and task["error"]["message"] == "cancelled"
    _, account = await system.call("GET", "/api/v1/account", key)
    assert account["data"]["wallets"]["mj_quota"] == {"available": 100, "frozen": 0, "consumed": 0}


async def test_cancel_processing_task_cancels_upstream(system):
    _, key = await system.user("developer", wallets={"mj_quota": 100})
    await system.shared_account(capacity=2)
    _, body = await system.imagine(key, "slow [sim duration=20]")
    task_id = body["data"]["task_id"]
    for _ in range(200):
        if (await system.call("GET", f"/api/v1/task/{task_id}", key))[1]["data"]["status"] == "processing":
            break
        await asyncio.sleep(0.02)
    await system.call("POST", "/api/v1/task/cancel", key, json={"task_ids": [task_id]})
    task = await system.wait_final(key, task_id, timeout_s=10)
    assert task["status"] == "failed" and task["error"]["message"] == "cancelled"
    assert task["meta"]["usage"]["consume"] == 0
