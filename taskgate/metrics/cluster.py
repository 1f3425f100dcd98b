"""Cluster-wide figures read from Redis at scrape time (one read-only script call), so every API
replica reports the same numbers; the dashboard's overview is built from the same snapshot."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from taskgate.metrics.waiting import pending_summary
from taskgate.models import LANES_BY_PRIORITY
from taskgate.store import script_api
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts

CHUNK = 250  # flows or users per script call: bounds how long one call holds Redis


@dataclass(slots=True)
class ClusterSnapshot:
    now_ms: int = 0
    pending: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (lane, pool, plan) -> n
    oldest_created_ms: dict[str, int] = field(default_factory=dict)  # lane -> created_ms
    running: dict[tuple[str, str], int] = field(default_factory=dict)  # (plan, pool) -> n
    accounts: list[dict[str, Any]] = field(default_factory=list)
    frozen: dict[str, int] = field(default_factory=dict)  # unit -> frozen
    webhook_backlog: int = 0
    webhook_oldest_due_ms: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)  # S10 wait reason -> pending tasks

    def oldest_age_s(self, lane: str) -> float:
        created = self.oldest_created_ms.get(lane)
        return max(0.0, (self.now_ms - created) / 1000) if created else 0.0

    def webhook_oldest_age_s(self) -> float:
        due = self.webhook_oldest_due_ms
        return max(0.0, (self.now_ms - due) / 1000) if due else 0.0

    def pending_by_lane(self, lane: str) -> int:
        return sum(n for (ln, _, _), n in self.pending.items() if ln == lane)

    def to_api(self) -> dict[str, Any]:
        lanes = {
            str(lane): {
                "pending": self.pending_by_lane(lane),
                "oldest_age_s": round(self.oldest_age_s(lane), 3),
            }
            for lane in LANES_BY_PRIORITY
        }
        return {
            "now_ms": self.now_ms,
            "lanes": lanes,
            "pending": [
                {"lane": k[0], "pool": k[1], "plan": k[2], "tasks": n}
                for k, n in sorted(self.pending.items())
            ],
            "running": [{"plan": k[0], "pool": k[1], "tasks": n} for k, n in sorted(self.running.items())],
            "accounts": self.accounts,
            "frozen": dict(sorted(self.frozen.items())),
            "webhook_backlog": self.webhook_backlog,
            "webhook_oldest_age_s": round(self.webhook_oldest_age_s(), 3),
        }


def _pairs(raw: Any) -> dict[str, Any]:
    return raw if isinstance(raw, dict) else {}  # cjson encodes an empty table as {}


def parse_bounded(payload: str) -> ClusterSnapshot:
    """The part ``read_cluster.lua`` returns: running tasks, accounts, webhook backlog."""
    raw = json.loads(payload)
    running = {tuple(k.split("|", 1)): int(v) for k, v in _pairs(raw["running"]).items()}
    accounts = sorted(raw["accounts"] if isinstance(raw["accounts"], list) else [], key=lambda a: a["id"])
    return ClusterSnapshot(
        now_ms=int(raw["now_ms"]),
        running=running,  # type: ignore[arg-type]
        accounts=accounts,
        webhook_backlog=int(raw["webhook_backlog"]),
        webhook_oldest_due_ms=int(raw["webhook_oldest_due_ms"]),
    )


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


async def read_queues(scripts: Scripts, keys: Keys, snap: ClusterSnapshot) -> None:
    """Pending tasks per lane/pool/plan and the oldest per lane: O(non-empty flows), one script
    call per chunk of flows, never O(tasks)."""
    flows = sorted(_text(f) for f in await scripts.redis.hkeys(keys.flow_meta()))
    for chunk in _chunks(flows):
        part = json.loads(await script_api.count_pending(scripts, keys, flows=chunk))
        for label, n in _pairs(part["pending"]).items():
            lane, pool, plan = label.split("|", 2)
            snap.pending[(lane, pool, plan)] = snap.pending.get((lane, pool, plan), 0) + int(n)
        for lane, created in _pairs(part["oldest"]).items():
            if lane not in snap.oldest_created_ms or int(created) < snap.oldest_created_ms[lane]:
                snap.oldest_created_ms[lane] = int(created)


async def read_aside(scripts: Scripts, keys: Keys, snap: ClusterSnapshot) -> None:
    """Tasks set aside out of their flows (stranded by their own exclusions, S10) are pending too:
    count them per lane/pool/plan, take their age into the oldest wait, and add the wait reasons."""
    summary = await pending_summary(scripts, keys, snap.now_ms or None)
    snap.by_reason = dict(summary.by_reason)
    for lane, age in summary.oldest_age_s.items():
        created = snap.now_ms - int(age * 1000)
        if age > 0 and (lane not in snap.oldest_created_ms or created < snap.oldest_created_ms[lane]):
            snap.oldest_created_ms[lane] = created
    aside = sorted(_text(t) for t in await scripts.redis.smembers(keys.tasks_aside()))
    if not aside:
        return
    pipe = scripts.redis.pipeline(transaction=False)
    for task_id in aside:
        pipe.hmget(keys.task(task_id), ["lane", "pool", "user", "status"])
    rows = [[_text(v) for v in row] for row in await pipe.execute()]
    plans = {u: _text(await scripts.redis.hget(keys.user(u), "plan")) for u in {r[2] for r in rows}}
    for lane, pool, user, status in rows:
        if status == "pending":
            label = (lane, pool, plans.get(user, ""))
            snap.pending[label] = snap.pending.get(label, 0) + 1


async def read_frozen(scripts: Scripts, keys: Keys, snap: ClusterSnapshot) -> None:
    """Frozen balances per unit over every wallet: O(users), one script call per chunk of users."""
    users = sorted(_text(u) for u in await scripts.redis.smembers(keys.users()))
    for chunk in _chunks(users):
        frozen = json.loads(await script_api.sum_frozen(scripts, keys, user_ids=chunk))["frozen"]
        for unit, n in _pairs(frozen).items():
            snap.frozen[unit] = snap.frozen.get(unit, 0) + int(n)


async def read_cluster(scripts: Scripts, keys: Keys, *, now_ms: int | None = None) -> ClusterSnapshot:
    snap = parse_bounded(await script_api.read_cluster(scripts, keys, now=now_ms))
    await read_queues(scripts, keys, snap)
    await read_aside(scripts, keys, snap)
    await read_frozen(scripts, keys, snap)
    return snap


class ClusterCollector(Collector):
    """Renders the last snapshot. ``refresh`` (awaited by /metrics and the dashboard) reads a new
    one unless the last is younger than ``max_age_s``, and at most one read runs at a time, so
    scrapers and open dashboards do not multiply the work Redis does."""

    def __init__(self, scripts: Scripts, keys: Keys, max_age_s: float = 0.0) -> None:
        self.scripts, self.keys, self.max_age_s = scripts, keys, max_age_s
        self.snapshot = ClusterSnapshot()
        self._read_at = -1e18
        self._lock = asyncio.Lock()

    async def refresh(self) -> ClusterSnapshot:
        async with self._lock:
            if time.monotonic() - self._read_at >= self.max_age_s:
                self.snapshot = await read_cluster(self.scripts, self.keys)
                self._read_at = time.monotonic()
            return self.snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s = self.snapshot
        pending = GaugeMetricFamily(
            "taskgate_pending_tasks", "Tasks waiting for an account", labels=["lane", "pool", "plan"]
        )
        for (lane, pool, plan), n in sorted(s.pending.items()):
            pending.add_metric([lane, pool, plan], n)
        yield pending
        oldest = GaugeMetricFamily(
            "taskgate_pending_oldest_age_seconds", "Age of the oldest waiting task", labels=["lane"]
        )
        for lane in LANES_BY_PRIORITY:
            oldest.add_metric([str(lane)], s.oldest_age_s(lane))
        yield oldest
        by_reason = GaugeMetricFamily(
            "taskgate_pending_tasks_by_reason", "Pending tasks per wait reason (S10)", labels=["reason"]
        )
        for reason, n in sorted(s.by_reason.items()):
            by_reason.add_metric([reason], float(n))
        yield by_reason
        running = GaugeMetricFamily(
            "taskgate_plan_running_tasks", "Tasks processing, by the owner's plan", labels=["plan", "pool"]
        )
        for (plan, pool), n in sorted(s.running.items()):
            running.add_metric([plan, pool], n)
        yield running
        yield from self._accounts(s)
        frozen = GaugeMetricFamily(
            "taskgate_frozen_credits", "Credits frozen by unfinished tasks", labels=["unit"]
        )
        for unit, n in sorted(s.frozen.items()):
            frozen.add_metric([unit], n)
        yield frozen
        yield GaugeMetricFamily(
            "taskgate_webhook_backlog", "Webhook deliveries waiting", value=s.webhook_backlog
        )
        yield GaugeMetricFamily(
            "taskgate_webhook_backlog_oldest_age_seconds",
            "How long the oldest due delivery has waited",
            value=s.webhook_oldest_age_s(),
        )

    def _accounts(self, s: ClusterSnapshot) -> Iterator[GaugeMetricFamily]:
        running = GaugeMetricFamily(
            "taskgate_account_running_tasks", "Tasks running on an account", labels=["account", "owner"]
        )
        capacity = GaugeMetricFamily(
            "taskgate_account_capacity", "Concurrent tasks an account may run", labels=["account", "owner"]
        )
        states = GaugeMetricFamily("taskgate_accounts", "Accounts per health state", labels=["state"])
        by_state: dict[str, int] = {}
        for acc in s.accounts:
            running.add_metric([acc["id"], acc["owner"]], acc["running"])
            capacity.add_metric([acc["id"], acc["owner"]], acc["capacity"])
            by_state[acc["state"]] = by_state.get(acc["state"], 0) + 1
        for state in ("active", "cooling_down", "needs_captcha", "disabled", "auto_disabled", "banned"):
            states.add_metric([state], by_state.pop(state, 0))
        for state, n in sorted(by_state.items()):
            states.add_metric([state], n)
        yield running
        yield capacity
        yield states
