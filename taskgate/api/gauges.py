"""Prometheus gauges read from Redis at scrape time (queue depth per lane, running tasks, accounts
by state), so every API replica reports the same cluster-wide figures."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from taskgate.models import LANES_BY_PRIORITY
from taskgate.services import Services


class SnapshotCollector(Collector):
    """Holds the last snapshot; ``refresh`` (awaited by the /metrics handler) updates it."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.snapshot: dict[str, float] = {}

    async def refresh(self) -> None:
        r, k = self.services.redis, self.services.keys
        pipe = r.pipeline(transaction=False)
        for lane in LANES_BY_PRIORITY:
            pipe.zcard(k.ready(lane))
        pipe.zcard(k.leases())
        pipe.zcard(k.relax_waiting())
        pipe.hget(k.sched(), "dispatched")
        pipe.llen(k.worker_jobs())
        values = await pipe.execute()
        snap = {f"ready_flows:{lane}": float(v) for lane, v in zip(LANES_BY_PRIORITY, values, strict=False)}
        snap["running"] = float(values[3])
        snap["relax_waiting"] = float(values[4])
        snap["dispatched_total"] = float(values[5] or 0)
        snap["worker_queued"] = float(values[6])
        self.snapshot = snap

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ready = GaugeMetricFamily(
            "taskgate_ready_flows", "Flows with work ready to dispatch", labels=["lane"]
        )
        for lane in LANES_BY_PRIORITY:
            ready.add_metric([str(lane)], self.snapshot.get(f"ready_flows:{lane}", 0.0))
        yield ready
        yield GaugeMetricFamily(
            "taskgate_running_tasks", "Tasks holding a slot lease", value=self.snapshot.get("running", 0.0)
        )
        yield GaugeMetricFamily(
            "taskgate_worker_queued_jobs",
            "Dispatched jobs waiting for a worker to start them (workers scale on it)",
            value=self.snapshot.get("worker_queued", 0.0),
        )
        yield GaugeMetricFamily(
            "taskgate_relax_waiting_tasks",
            "Relax tasks waiting",
            value=self.snapshot.get("relax_waiting", 0.0),
        )
        yield GaugeMetricFamily(
            "taskgate_dispatched_tasks",
            "Dispatches since the deployment started",
            value=self.snapshot.get("dispatched_total", 0.0),
        )


def register_gauges(registry: CollectorRegistry, services: Services) -> SnapshotCollector:
    collector = SnapshotCollector(services)
    registry.register(collector)
    registry._taskgate_snapshot = collector  # type: ignore[attr-defined]
    return collector


async def refresh_gauges(registry: CollectorRegistry) -> None:
    collector = getattr(registry, "_taskgate_snapshot", None)
    if collector is not None:
        await asyncio.wait_for(collector.refresh(), 2.0)
