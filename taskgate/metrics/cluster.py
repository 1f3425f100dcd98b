"""Cluster-wide figures read from Redis at scrape time (one read-only script call), so every API
replica reports the same numbers; the dashboard's overview is built from the same snapshot."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from taskgate.models import LANES_BY_PRIORITY
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts


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


def parse_snapshot(payload: str) -> ClusterSnapshot:
    raw = json.loads(payload)
    pending = {tuple(k.split("|", 2)): int(v) for k, v in _pairs(raw["pending"]).items()}
    running = {tuple(k.split("|", 1)): int(v) for k, v in _pairs(raw["running"]).items()}
    accounts = sorted(raw["accounts"] if isinstance(raw["accounts"], list) else [], key=lambda a: a["id"])
    return ClusterSnapshot(
        now_ms=int(raw["now_ms"]),
        pending=pending,  # type: ignore[arg-type]
        oldest_created_ms={k: int(v) for k, v in _pairs(raw["oldest"]).items()},
        running=running,  # type: ignore[arg-type]
        accounts=accounts,
        frozen={k: int(v) for k, v in _pairs(raw["frozen"]).items()},
        webhook_backlog=int(raw["webhook_backlog"]),
        webhook_oldest_due_ms=int(raw["webhook_oldest_due_ms"]),
    )


async def read_cluster(scripts: Scripts, keys: Keys, *, now_ms: int | None = None) -> ClusterSnapshot:
    result = await scripts.call(
        "read_cluster",
        keys=[keys.flow_meta(), keys.leases(), keys.accounts(), keys.users(), keys.webhook_outbox()],
        args=[keys.base, now_ms or ""],
    )
    return parse_snapshot(str(result[1]))


class ClusterCollector(Collector):
    """Renders the last snapshot; the /metrics handler refreshes it before rendering."""

    def __init__(self, scripts: Scripts, keys: Keys) -> None:
        self.scripts, self.keys = scripts, keys
        self.snapshot = ClusterSnapshot()

    async def refresh(self) -> ClusterSnapshot:
        self.snapshot = await read_cluster(self.scripts, self.keys)
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
