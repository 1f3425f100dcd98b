"""Metrics: cluster state on the API's /metrics and per-process figures on the worker's and
scheduler's probe servers, after driving real tasks through the system."""

from __future__ import annotations

import asyncio

from tests.system import OpsSystem

IMAGINE = {"model": "midjourney", "task_type": "imagine"}


async def _create(ops: OpsSystem, key: str, body: dict) -> dict:
    status, resp = await ops.call("POST", "/api/v1/task", key, json=body)
    assert status == 200, resp
    return resp["data"]


async def drive(ops: OpsSystem) -> dict[str, dict]:
    """One completed, one incorrect (refunded) and one waiting task (no account serves flux)."""
    _, key = await ops.user("developer", wallets={"mj_quota": 1000, "credits": 500})
    account = await ops.shared_account(capacity=2, models=["midjourney"])
    done = await _create(
        ops, key, {**IMAGINE, "input": {"prompt": "ok [sim duration=0.1]", "process_mode": "fast"}}
    )
    bad = await _create(
        ops,
        key,
        {**IMAGINE, "input": {"prompt": "x [sim duration=0.05 outcome=incorrect]", "process_mode": "fast"}},
    )
    waiting = await _create(
        ops,
        key,
        {"model": "Qubico/flux1-schnell", "task_type": "txt2img", "input": {"prompt": "a lighthouse"}},
    )
    tasks = {
        "done": await ops.wait_final(key, done["task_id"]),
        "bad": await ops.wait_final(key, bad["task_id"]),
        "waiting": waiting,
    }
    return {**tasks, "key": {"key": key}, "account": {"id": account}}


async def test_cluster_and_process_metrics_match_driven_tasks(ops: OpsSystem) -> None:
    t = await drive(ops)
    assert t["done"]["status"] == "completed" and t["bad"]["status"] == "failed"
    await asyncio.sleep(0.05)  # let the worker's post-finish observation land
    api = await ops.scrape(ops.api_url)
    assert api[("taskgate_pending_tasks", (("lane", "fast"), ("plan", "developer"), ("pool", "ppu")))] == 1
    assert api[("taskgate_pending_oldest_age_seconds", (("lane", "fast"),))] > 0
    assert api[("taskgate_pending_oldest_age_seconds", (("lane", "relax"),))] == 0
    assert api[("taskgate_accounts", (("state", "active"),))] == 1
    acc = (("account", t["account"]["id"]), ("owner", "shared"))
    assert api[("taskgate_account_capacity", acc)] == 2 and api[("taskgate_account_running_tasks", acc)] == 0
    frozen = t["waiting"]["meta"]["usage"]["frozen"]
    assert frozen > 0 and api[("taskgate_frozen_credits", (("unit", "credits"),))] == frozen
    assert api[("taskgate_webhook_backlog", ())] == 0
    assert (
        "taskgate_build_info",
        (("python", api_python(api)), ("role", "api"), ("version", "0.1.0")),
    ) in api

    worker = await ops.scrape(ops.worker_url)
    assert worker[("taskgate_task_outcomes_total", (("outcome", "completed"), ("reason", "")))] == 1
    assert worker[("taskgate_task_outcomes_total", (("outcome", "incorrect"), ("reason", "incorrect")))] == 1
    price = t["done"]["meta"]["usage"]["consume"]
    assert worker[("taskgate_credits_total", (("kind", "consumed"), ("unit", "mj_quota")))] == price
    assert worker[("taskgate_credits_total", (("kind", "refunded"), ("unit", "mj_quota")))] == price
    assert worker[("taskgate_dispatch_latency_seconds_count", (("lane", "fast"), ("pool", "ppu")))] == 2
    assert worker[("taskgate_task_run_seconds_count", (("mode", "fast"), ("model", "midjourney")))] == 1
    assert worker[("taskgate_worker_jobs_in_flight", ())] == 0
    assert worker[("taskgate_worker_max_jobs", ())] == ops.settings.worker_max_jobs
    assert worker[("taskgate_worker_attempts_held", ())] == 0  # the watcher let go of both attempts
    assert worker[("taskgate_worker_max_inflight", ())] == ops.settings.worker_max_inflight
    assert ("process_cpu_seconds_total", ()) in worker

    scheduler = await ops.scrape(ops.scheduler_url)
    assert scheduler[("taskgate_scheduler_dispatches_total", ())] == 2
    assert scheduler[("taskgate_scheduler_calls_total", (("op", "dispatch"),))] >= 1
    assert scheduler[("taskgate_scheduler_calls_total", (("op", "reap"),))] >= 1


def api_python(samples: dict) -> str:
    return next(dict(labels)["python"] for name, labels in samples if name == "taskgate_build_info")


async def test_probe_endpoints(ops: OpsSystem) -> None:
    for url in (ops.worker_url, ops.scheduler_url):
        for path in ("/healthz", "/readyz"):
            async with ops.http.get(url + path) as resp:
                body = await resp.json()
                assert resp.status == 200 and body["code"] == 200, (url, path, body)
