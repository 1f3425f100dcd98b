"""Worker-side observations of one attempt: read the task's settled fields once and count them."""

from __future__ import annotations

import json

from redis.asyncio import Redis

from taskgate.metrics.process import ProcessMetrics
from taskgate.store.keys import Keys

FINISH_FIELDS = (
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


async def observe_dispatch(
    redis: Redis, keys: Keys, metrics: ProcessMetrics, task_id: str, attempt: int
) -> None:
    """Enqueue -> first dispatch latency (first attempts only: a retry's wait is not queueing)."""
    if attempt != 1:
        return
    created, dispatched, lane, pool = await redis.hmget(
        keys.task(task_id), ["created_ms", "dispatched_ms", "lane", "pool"]
    )
    if created and dispatched:
        seconds = max(0, int(dispatched) - int(created)) / 1000
        metrics.dispatch_latency.labels((lane or b"").decode(), (pool or b"").decode()).observe(seconds)


async def observe_finish(
    redis: Redis, keys: Keys, metrics: ProcessMetrics, task_id: str, result: str
) -> None:
    """Count how an attempt ended (``result`` is the task status ``TaskRunner.run`` returned)."""
    if result not in ("pending", "completed", "failed"):
        return  # a stale attempt changed nothing
    values = await redis.hmget(keys.task(task_id), list(FINISH_FIELDS))
    t = {k: (v.decode() if v is not None else "") for k, v in zip(FINISH_FIELDS, values, strict=True)}
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
