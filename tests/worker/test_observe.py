"""The worker's metrics of an attempt come from finish_task's reply: the settled fields it returns are
the task's, and the worker counts them without reading the task again."""

from __future__ import annotations

import json

import pytest

from taskgate.metrics.process import ProcessMetrics
from taskgate.metrics.tasks import FINISH_FIELDS, observe_attempt
from taskgate.scheduler.dispatcher import Dispatcher
from taskgate.store import script_api
from taskgate.worker.runner import run_task
from taskgate.worker.settle import STALE, Ended
from tests.factories import enqueue, make_account, make_user

RATE_LIMITED = {"code": 429, "message": "slow down", "raw_message": "429", "detail": None}
UPSTREAM_FAILED = {"code": 500, "message": "boom", "raw_message": "500", "detail": None}


class Returns:
    """A TaskRunner whose attempt ended with ``ended``."""

    def __init__(self, ended: Ended) -> None:
        self.ended = ended

    async def run(self, task_id: str, attempt: int, *, task_hash: dict[str, str] | None = None) -> Ended:
        return self.ended


async def dispatched(redis, scripts, keys, settings, *, accounts=1):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    for _ in range(accounts):
        await make_account(scripts, keys, capacity=5)
    task_id = await enqueue(scripts, keys, user, price=14)
    await Dispatcher(redis, scripts, keys, settings).dispatch()
    return task_id


async def finish(scripts, keys, task_id, attempt, outcome, error=None):
    return await script_api.finish_task(
        scripts,
        keys,
        task_id=task_id,
        attempt=attempt,
        outcome=outcome,
        error=error,
        max_attempts=3,
        blame=True,
    )


async def job(metrics: ProcessMetrics, task_id: str, attempt: int, ended: Ended) -> str:
    """The arq job's end, with no Redis in its context: whatever it counts came with ``ended``."""
    return await run_task({"runner": Returns(ended), "metrics": metrics}, task_id, attempt)


def retries(metrics: ProcessMetrics) -> float:
    """Retried attempts, whatever their reason label."""
    [family] = [m for m in metrics.registry.collect() if m.name == "taskgate_task_outcomes"]
    return sum(
        s.value for s in family.samples if s.name.endswith("_total") and s.labels["outcome"] == "retried"
    )


def sample(metrics: ProcessMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("outcome", ["completed", "failed", "incorrect", "cancelled", "retry", "handback"])
async def test_finish_returns_the_task_fields_as_settled(redis, scripts, keys, settings, outcome):
    task_id = await dispatched(redis, scripts, keys, settings)
    finished = await finish(
        scripts, keys, task_id, 1, outcome, None if outcome == "completed" else RATE_LIMITED
    )
    assert finished.status == {"retry": "pending", "handback": "pending", "completed": "completed"}.get(
        outcome, "failed"
    )
    stored = await redis.hmget(keys.task(task_id), list(FINISH_FIELDS))
    expected = {k: (v or b"").decode() for k, v in zip(FINISH_FIELDS, stored, strict=True)}
    if outcome == "retry":  # not stored on the pending task: the reply carries the retry's error
        assert expected["error"] == ""
        expected["error"] = json.dumps(RATE_LIMITED)
    assert finished.task == expected


async def test_a_completed_attempt_is_counted_from_the_reply(redis, scripts, keys, settings):
    task_id = await dispatched(redis, scripts, keys, settings)
    finished = await finish(scripts, keys, task_id, 1, "completed")
    await redis.delete(keys.task(task_id))  # nothing left to read: the reply is all there is
    metrics = ProcessMetrics("worker")
    assert await job(metrics, task_id, 1, finished) == "completed"
    assert sample(metrics, "taskgate_task_outcomes_total", outcome="completed", reason="") == 1
    assert sample(metrics, "taskgate_credits_total", unit="mj_quota", kind="consumed") == 14
    assert sample(metrics, "taskgate_credits_total", unit="mj_quota", kind="refunded") == 0
    assert sample(metrics, "taskgate_dispatch_latency_seconds_count", lane="fast", pool="ppu") == 1
    assert sample(metrics, "taskgate_task_run_seconds_count", model="midjourney", mode="fast") == 1


async def test_a_retry_then_a_failure_are_counted_with_their_reasons(redis, scripts, keys, settings):
    task_id = await dispatched(redis, scripts, keys, settings, accounts=2)
    metrics = ProcessMetrics("worker")
    retried = await finish(scripts, keys, task_id, 1, "retry", RATE_LIMITED)
    assert await job(metrics, task_id, 1, retried) == "pending"
    assert retries(metrics) == 1
    assert sample(metrics, "taskgate_task_outcomes_total", outcome="retried", reason="rate_limited") == 1
    await Dispatcher(redis, scripts, keys, settings).dispatch()
    failed = await finish(scripts, keys, task_id, 2, "failed", UPSTREAM_FAILED)
    assert await job(metrics, task_id, 2, failed) == "failed"
    assert sample(metrics, "taskgate_task_outcomes_total", outcome="failed", reason="upstream_error") == 1
    assert sample(metrics, "taskgate_credits_total", unit="mj_quota", kind="refunded") == 14
    assert (
        sample(metrics, "taskgate_dispatch_latency_seconds_count", lane="fast", pool="ppu") == 1
    )  # first only
    assert sample(metrics, "taskgate_task_run_seconds_count", model="midjourney", mode="fast") == 0


async def test_a_stale_attempt_counts_nothing():
    metrics = ProcessMetrics("worker")
    assert await job(metrics, "t", 1, STALE) == "stale"
    assert not [
        s for m in metrics.registry.collect() if m.name.startswith("taskgate_task") for s in m.samples
    ]


def test_failed_over_and_penalised_credits():
    metrics = ProcessMetrics("worker")
    task = {
        "attempt": "2",
        "status": "failed",
        "outcome": "incorrect",
        "unit": "credits",
        "frozen": "10",
        "consume": "10",
        "failover": "1",
        "error": '{"code": 400}',
    }
    observe_attempt(metrics, 2, "failed", task)
    assert sample(metrics, "taskgate_task_outcomes_total", outcome="incorrect", reason="incorrect") == 1
    assert sample(metrics, "taskgate_task_outcomes_total", outcome="failed_over", reason="") == 1
    assert sample(metrics, "taskgate_credits_total", unit="credits", kind="penalised") == 10
    assert sample(metrics, "taskgate_credits_total", unit="credits", kind="refunded") == 0
