"""Per-process counters and histograms. Each process (API, scheduler, worker) owns one
``ProcessMetrics`` with its own registry, passed down explicitly (no module-level registry)."""

from __future__ import annotations

import platform

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from taskgate import __version__

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
RUN_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
CALL_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)


class ProcessMetrics:
    def __init__(self, role: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        Gauge(
            "taskgate_build_info",
            "Version of the running taskgate",
            ["version", "python", "role"],
            registry=r,
        ).labels(__version__, platform.python_version(), role).set(1)
        self.dispatch_latency = Histogram(
            "taskgate_dispatch_latency_seconds",
            "From enqueue to the first dispatch",
            ["lane", "pool"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.run_time = Histogram(
            "taskgate_task_run_seconds",
            "From first dispatch to the end, completed tasks",
            ["model", "mode"],
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self.outcomes = Counter(
            "taskgate_task_outcomes",
            "Ends of attempts: completed, failed (by reason), incorrect, cancelled, retried, failed_over",
            ["outcome", "reason"],
            registry=r,
        )
        self.credits = Counter(
            "taskgate_credits",
            "Credits settled: consumed, refunded or penalised",
            ["unit", "kind"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "taskgate_webhook_deliveries", "Webhook delivery attempts by result", ["result"], registry=r
        )
        self.reaper_recoveries = Counter(
            "taskgate_reaper_recoveries",
            "Expired leases: retried, failed, or queued (job not yet started: lease extended)",
            ["result"],
            registry=r,
        )
        self.scheduler_calls = Counter(
            "taskgate_scheduler_calls", "Scheduler script calls", ["op"], registry=r
        )
        self.scheduler_call_time = Histogram(
            "taskgate_scheduler_call_seconds",
            "Duration of scheduler script calls",
            ["op"],
            buckets=CALL_BUCKETS,
            registry=r,
        )
        self.scheduler_dispatches = Counter(
            "taskgate_scheduler_dispatches", "Tasks booked to an account by this scheduler", registry=r
        )
        self.jobs_in_flight = Gauge(
            "taskgate_worker_jobs_in_flight", "Attempts this worker runs now", registry=r
        )
        self.max_jobs = Gauge(
            "taskgate_worker_max_jobs", "Concurrent attempts this worker may run", registry=r
        )
        self.attempts_held = Gauge(
            "taskgate_worker_attempts_held", "Attempts this worker's watcher holds in flight", registry=r
        )
        self.max_inflight = Gauge(
            "taskgate_worker_max_inflight", "Attempts this worker's watcher may hold", registry=r
        )
