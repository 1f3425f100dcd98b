"""The operator's overview (admin API and dashboard): the cluster snapshot of /metrics, plans
with their caps, recent failed tasks and the credits flow of the last hour."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from taskgate.admin.tasks import TaskAdmin, TaskFilter
from taskgate.api.state import SERVICES
from taskgate.metrics.cluster import ClusterCollector
from taskgate.services import Services

CLUSTER = web.AppKey("cluster", ClusterCollector)  # the API's cached cluster snapshot
RECENT_FAILED = 20
FLOW_WINDOW_S = 3600
FLOW_SAMPLE = 500  # most recent tasks of the window summed for the credits flow


def credits_flow(tasks: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per unit: consumed, refunded and penalised by tasks that ended; frozen by those still open."""
    flow: dict[str, dict[str, int]] = {}
    for t in tasks:
        if not t["unit"]:
            continue
        f = flow.setdefault(t["unit"], {"consumed": 0, "refunded": 0, "penalised": 0, "frozen": 0})
        if t["status"] == "completed":
            f["consumed"] += t["consume"]
        elif t["status"] == "failed":
            f["penalised"] += t["consume"]
            f["refunded"] += t["frozen"] - t["consume"]
        else:
            f["frozen"] += t["frozen"]
    return dict(sorted(flow.items()))


async def overview_for(request: web.Request) -> dict[str, Any]:
    snapshot = await request.app[CLUSTER].refresh()
    return await build_overview(request.app[SERVICES], snapshot.to_api())


async def build_overview(services: Services, snapshot: dict[str, Any]) -> dict[str, Any]:
    admin = TaskAdmin(services)
    failed = await admin.list(TaskFilter(status="failed", max_age_s=FLOW_WINDOW_S * 24, limit=RECENT_FAILED))
    recent = await admin.list(TaskFilter(max_age_s=FLOW_WINDOW_S, limit=FLOW_SAMPLE))
    running: dict[str, int] = {}
    for row in snapshot["running"]:
        running[row["plan"]] = running.get(row["plan"], 0) + row["tasks"]
    plans = [
        {"plan": name, "cap_per_user": plan.concurrency, "running": running.pop(name, 0)}
        for name, plan in services.catalogue.plans.items()
    ]
    plans += [{"plan": name or "?", "cap_per_user": 0, "running": n} for name, n in sorted(running.items())]
    return {
        **snapshot,
        "plans": plans,
        "recent_failed": failed,
        "credits_flow": {"window_s": FLOW_WINDOW_S, "tasks": len(recent), "units": credits_flow(recent)},
    }
