"""Routes and headers GoAPI clients use: ``DELETE /api/v1/task/{id}`` as a cancel, trailing slashes,
``Authorization: Bearer``, ``"config": null``, and GoAPI's account-management reads
(``GET /account/info``, ``GET /account/active_tasks`` as PiAPI-1/piapi-cli reads it: per model
``staged_count``/``pending_count``/``processing_count``; ``GET /api/open/tasks/histories``)."""

from __future__ import annotations

import asyncio

from tests.compat.harness import customer, round_trip

SLOW = {
    "model": "midjourney",
    "task_type": "imagine",
    "input": {"prompt": "a slow one [sim duration=30]", "process_mode": "fast"},
}


async def test_delete_cancels_and_refunds(system) -> None:
    key = await customer(system)
    _, created = await system.call("POST", "/api/v1/task", key, json=SLOW)
    task_id = created["data"]["task_id"]
    status, body = await system.call("DELETE", f"/api/v1/task/{task_id}", key)
    assert status == 200 and body["code"] == 200 and body["data"]["task_id"] == task_id
    task = await system.wait_final(key, task_id)
    assert task["status"] == "failed" and task["error"]["message"] == "cancelled"
    assert task["meta"]["usage"]["consume"] == 0
    _, account = await system.call("GET", "/account/info", key)
    assert account["data"]["wallets"]["mj_quota"] == {"available": 10_000, "frozen": 0, "consumed": 0}


async def test_delete_of_another_customers_task_is_404(system) -> None:
    key = await customer(system)
    _, other = await system.user("developer", wallets={"mj_quota": 100})
    _, created = await system.call("POST", "/api/v1/task", key, json=SLOW)
    status, body = await system.call("DELETE", f"/api/v1/task/{created['data']['task_id']}", other)
    assert status == 404 and body["code"] == 404
    await system.call("DELETE", f"/api/v1/task/{created['data']['task_id']}", key)


async def test_trailing_slashes_and_bearer_and_null_config(system) -> None:
    key = await customer(system)
    bearer = {"Authorization": f"Bearer {key}"}
    status, created = await system.call(
        "POST",
        "/api/v1/task/",
        headers=bearer,
        json={
            "model": "Qubico/flux1-schnell",
            "task_type": "txt2img",
            "input": {"prompt": "a fox"},
            "config": None,
        },
    )
    assert status == 200 and created["code"] == 200
    task_id = created["data"]["task_id"]
    assert created["data"]["config"]["service_mode"] == ""
    status, polled = await system.call("GET", f"/api/v1/task/{task_id}/", headers=bearer)
    assert status == 200 and polled["data"]["task_id"] == task_id
    task = await system.wait_final(key, task_id)
    assert task["status"] == "completed"
    status, _ = await system.call("GET", "/api/v1/task/x", headers={"Authorization": "Bearer wrong"})
    assert status == 401
    status, _ = await system.call("GET", "/account/info", headers={"Authorization": f"Basic {key}"})
    assert status == 401


async def test_account_reads_at_goapi_paths(system) -> None:
    key = await customer(system, plan="free")  # cap 3: a fourth slow task is staged
    ids = []
    for _ in range(4):
        _, created = await system.call("POST", "/api/v1/task", key, json=SLOW)
        ids.append(created["data"]["task_id"])
    done = await round_trip(
        system,
        await customer(system),
        {"model": "Qubico/flux1-schnell", "task_type": "txt2img", "input": {"prompt": "other customer"}},
    )
    assert done["status"] == "completed"
    for _ in range(500):
        status, active = await system.call("GET", "/account/active_tasks", key)
        counts = active["data"].get("midjourney", {})
        if counts.get("processing_count") == 3:
            break
        await asyncio.sleep(0.02)
    assert status == 200 and active["code"] == 200
    assert counts["processing_count"] == 3 and counts["staged_count"] == 1 and counts["pending_count"] == 0
    assert sorted(counts["active_tasks"]) == sorted(ids)
    assert set(active["data"]) == {"midjourney"}  # the other customer's task is not counted
    status, history = await system.call("GET", "/api/open/tasks/histories?page=1&size=2", key)
    assert status == 200 and history["data"]["total"] == 4 and len(history["data"]["tasks"]) == 2
    status, info = await system.call("GET", "/account/info/", key)
    assert status == 200 and info["data"]["plan"] == "free"
    assert info["data"]["concurrency"] == {"running": 3, "limit": 3}
    for task_id in ids:
        await system.call("DELETE", f"/api/v1/task/{task_id}", key)
