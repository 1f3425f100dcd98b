"""Worker-side observations of one attempt: count the task's settled fields, as ``finish_task``
returned them (no read of the task)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from taskgate.metrics.process import ProcessMetrics

# what the observation counts; finish_task.lua's REPORTED returns exactly these
FINISH_FIELDS = (
    "attempt",
    "created_ms",
    "pool",
    "status",
    "outcome",
    "model",
    "lane",
    "unit",
    "frozen",
    "consume",
    "dispatched_ms",
    "started_ms",
    "ended_ms",
    "failover",
    "error",
)
# error codes as the worker and the scripts write them -> a short, bounded reason label
REASONS = {
    400: "incorrect",
    402: "quota",
    404: "not_found",
    408: "timeout",
    410: "gone",
    429: "rate_limited",
    499: "cancelled",
    500: "upstream_error",
    503: "unavailable",
    504: "timeout",
}


def reason_of(raw_error: str | None) -> str:
    if not raw_error:
        return ""
    try:
        code = int(json.loads(raw_error).get("code", 0))
    except (ValueError, TypeError, AttributeError):
        return "unknown"
    return REASONS.get(code, f"code_{code}") if code else ""


def observe_attempt(metrics: ProcessMetrics, attempt: int, result: str, task: Mapping[str, str]) -> None:
    """Count how an attempt ended (``result``: the task's status after it, or ``stale``) from the
    task's settled fields ``task``; the first attempt also gives the enqueue -> dispatch latency."""
    if result not in ("pending", "completed", "failed"):
        return  # a stale attempt changed nothing
    t = {name: task.get(name) or "" for name in FINISH_FIELDS}
    if attempt == 1 and t["created_ms"] and t["dispatched_ms"] and t["attempt"] == "1":
        seconds = max(0, int(t["dispatched_ms"]) - int(t["created_ms"])) / 1000
        metrics.dispatch_latency.labels(t["lane"], t["pool"]).observe(seconds)
    if result == "pending":
        metrics.outcomes.labels("retried", reason_of(t["error"])).inc()
        return
    if t["status"] not in ("completed", "failed"):
        return
    outcome = t["outcome"] or t["status"]
    metrics.outcomes.labels(outcome, reason_of(t["error"]) if outcome != "completed" else "").inc()
    if t["failover"] == "1":
        metrics.outcomes.labels("failed_over", "").inc()
    if outcome == "completed" and t["started_ms"] and t["ended_ms"]:
        seconds = max(0, int(t["ended_ms"]) - int(t["started_ms"])) / 1000
        metrics.run_time.labels(t["model"], t["lane"]).observe(seconds)
    _count_credits(metrics, t)


def _count_credits(metrics: ProcessMetrics, t: dict[str, str]) -> None:
    if not t["unit"]:
        return  # BYOA: free
    frozen, consume = int(t["frozen"] or 0), int(t["consume"] or 0)
    if t["status"] == "completed":
        metrics.credits.labels(t["unit"], "consumed").inc(consume)
    elif consume:
        metrics.credits.labels(t["unit"], "penalised").inc(consume)
    if frozen > consume:
        metrics.credits.labels(t["unit"], "refunded").inc(frozen - consume)
