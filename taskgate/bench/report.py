"""Figures and output of ``taskgate bench scheduler``: one JSON object (``--json``) or rich tables.

JSON keys (stable; add new keys, never rename or drop these):

- ``benchmark``: "scheduler"; ``schema``: 1
- ``redis``: ``version``, ``url`` (password hidden), ``private`` (true = a throwaway redis-server)
- ``config``: ``users`` (list), ``tasks``, ``batch``, ``latency_tasks``, ``rate``, ``price``, ``quick``
- ``scenarios``: one object per user count, with
  - ``users``, ``tasks``, ``seed_s`` (seeding time, not a figure of merit)
  - ``decisions``, ``dispatch_calls``, ``wall_s``, ``decisions_per_s`` (client-side, Python included)
  - ``call_ms``: ``p50``, ``p99``, ``max`` of one ``dispatch(batch)`` call
  - ``redis_usec_per_decision``, ``redis_decisions_per_s``: EVALSHA time from INFO commandstats
  - ``commands_per_decision``: Redis command -> calls per decision inside the script (top 12)
  - ``jain_index`` (null when under 2 tasks per user), ``jain_window`` (decisions it covers),
    ``share_max_dev`` (largest |count / mean - 1| over users in that window)
  - ``latency_ms`` (enqueue->dispatch with free slots, client-side perf_counter) and
    ``latency_server_ms`` (``dispatched_ms - created_ms``, Redis TIME, 1 ms resolution): each
    ``method``, ``sent``, ``count``, ``p50``, ``p99``, ``max``
  - ``memory_per_task_bytes`` (INFO used_memory delta / tasks) and ``memory_breakdown_bytes``
    (MEMORY USAGE per queued task on a sample: ``task_hash``, ``ledger`` (its growth: the freeze
    entry), ``user_tasks``, ``flow``; the rest of the delta is the flow's ready/flow_meta entries
    and allocator overhead)
- ``summary``: ``decisions_per_s_min``, ``latency_p99_ms_max``, ``scale_ratio`` (decisions/s at the
  most users / at the fewest), ``memory_per_task_bytes_max``, ``jain_index_min``
- ``targets``: name -> ``{"target", "value", "met"}`` for ``decisions_per_s`` (>= 10000),
  ``latency_p99_ms`` (< 5), ``scale_ratio`` (>= 2/3), ``memory_per_task_bytes`` (<= 1024). Figures,
  not assertions: a missed target never changes the exit code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

SCHEMA = 1
TARGETS: dict[str, tuple[str, float]] = {  # name -> (comparison, bound)
    "decisions_per_s": (">=", 10_000.0),
    "latency_p99_ms": ("<", 5.0),
    "scale_ratio": (">=", 2 / 3),
    "memory_per_task_bytes": ("<=", 1024.0),
}
TOP_COMMANDS = 12


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def jain_index(values: Sequence[float]) -> float | None:
    """(sum x)^2 / (n * sum x^2): 1.0 when all shares are equal, 1/n when one user gets everything."""
    squares = sum(v * v for v in values)
    if not values or squares == 0:
        return None
    return float(sum(values) ** 2 / (len(values) * squares))


def fairness_figures(counts: Sequence[int]) -> dict[str, Any]:
    mean = sum(counts) / len(counts) if counts else 0
    dev = max((abs(c / mean - 1) for c in counts), default=0.0) if mean else None
    return {"jain_index": jain_index(counts), "share_max_dev": dev}


def latency_figures(ms: Sequence[float], sent: int, method: str) -> dict[str, Any]:
    return {
        "method": method,
        "sent": sent,
        "count": len(ms),
        "p50": percentile(ms, 50),
        "p99": percentile(ms, 99),
        "max": max(ms) if ms else None,
    }


def throughput_figures(
    decisions: int, wall_s: float, calls_s: Sequence[float], before: dict[str, Any], after: dict[str, Any]
) -> dict[str, Any]:
    calls_ms = [c * 1000 for c in calls_s]
    diff = commandstats_diff(before, after)
    evalsha_usec = diff.get("evalsha", (0, 0))[1]
    per_decision = {
        name: calls / decisions
        for name, (calls, _) in diff.items()
        if name not in ("evalsha", "info") and decisions
    }
    top = dict(sorted(per_decision.items(), key=lambda kv: -kv[1])[:TOP_COMMANDS])
    return {
        "decisions": decisions,
        "dispatch_calls": len(calls_s),
        "wall_s": wall_s,
        "decisions_per_s": decisions / wall_s if wall_s > 0 else None,
        "call_ms": {
            "p50": percentile(calls_ms, 50),
            "p99": percentile(calls_ms, 99),
            "max": max(calls_ms) if calls_ms else None,
        },
        "redis_usec_per_decision": evalsha_usec / decisions if decisions else None,
        "redis_decisions_per_s": decisions / (evalsha_usec / 1e6) if evalsha_usec else None,
        "commands_per_decision": {k: round(v, 3) for k, v in top.items()},
    }


def commandstats_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Command name -> (calls, usec) between two INFO commandstats readings."""
    out = {}
    for key, stat in after.items():
        if not key.startswith("cmdstat_"):
            continue
        old = before.get(key, {"calls": 0, "usec": 0})
        calls, usec = int(stat["calls"]) - int(old["calls"]), int(stat["usec"]) - int(old["usec"])
        if calls > 0:
            out[key.removeprefix("cmdstat_")] = (calls, usec)
    return out


def build(config: dict[str, Any], redis: dict[str, Any], scenarios: list[dict[str, Any]]) -> dict[str, Any]:
    summary = summarise(scenarios)
    targets = {}
    for name, (op, bound) in TARGETS.items():
        value = summary[_SUMMARY_OF[name]]
        met = None if value is None else _compare(value, op, bound)
        targets[name] = {"target": f"{op} {bound:g}", "value": value, "met": met}
    return {
        "benchmark": "scheduler",
        "schema": SCHEMA,
        "redis": redis,
        "config": config,
        "scenarios": scenarios,
        "summary": summary,
        "targets": targets,
    }


_SUMMARY_OF = {
    "decisions_per_s": "decisions_per_s_min",
    "latency_p99_ms": "latency_p99_ms_max",
    "scale_ratio": "scale_ratio",
    "memory_per_task_bytes": "memory_per_task_bytes_max",
}


def _compare(value: float, op: str, bound: float) -> bool:
    match op:
        case ">=":
            return value >= bound
        case "<":
            return value < bound
        case "<=":
            return value <= bound
    raise ValueError(op)


def summarise(scenarios: list[dict[str, Any]]) -> dict[str, Any]:
    def values(get: Any) -> list[float]:
        return [v for v in (get(s) for s in scenarios) if v is not None]

    dps = values(lambda s: s["decisions_per_s"])
    by_users = sorted(scenarios, key=lambda s: s["users"])
    ratio = None
    if len(by_users) >= 2 and by_users[0]["decisions_per_s"]:
        ratio = (by_users[-1]["decisions_per_s"] or 0) / by_users[0]["decisions_per_s"]
    p99 = values(lambda s: s["latency_ms"]["p99"])
    memory = values(lambda s: s["memory_per_task_bytes"])
    jain = values(lambda s: s["jain_index"])
    return {
        "decisions_per_s_min": min(dps, default=None),
        "latency_p99_ms_max": max(p99, default=None),
        "scale_ratio": ratio,
        "memory_per_task_bytes_max": max(memory, default=None),
        "jain_index_min": min(jain, default=None),
    }


def _fmt(value: Any, spec: str = ".1f") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def render(result: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"taskgate bench scheduler (batch {result['config']['batch']}, "
        f"redis {result['redis']['version']})"
    )
    table.caption = (
        "dec/s: dispatch decisions per second (client; redis: EVALSHA time only); call: one "
        "dispatch(batch) in ms; lat: enqueue->dispatch with free slots in ms (client perf_counter; "
        "srv: Redis TIME, 1 ms steps); B/task: used_memory per queued task; hash: task hash bytes"
    )
    for column in (
        "users",
        "tasks",
        "dec/s",
        "redis dec/s",
        "call p99",
        "lat p50",
        "lat p99",
        "srv p99",
        "Jain",
        "B/task",
        "hash",
    ):
        table.add_column(column, justify="right")
    for s in result["scenarios"]:
        table.add_row(
            str(s["users"]),
            str(s["tasks"]),
            _fmt(s["decisions_per_s"], ".0f"),
            _fmt(s["redis_decisions_per_s"], ".0f"),
            _fmt(s["call_ms"]["p99"], ".2f"),
            _fmt(s["latency_ms"]["p50"], ".2f"),
            _fmt(s["latency_ms"]["p99"], ".2f"),
            _fmt(s["latency_server_ms"]["p99"], ".0f"),
            _fmt(s["jain_index"], ".4f"),
            _fmt(s["memory_per_task_bytes"], ".0f"),
            _fmt(s["memory_breakdown_bytes"]["task_hash"], ".0f"),
        )
    console.print(table)
    targets = Table(title="targets (figures, not assertions)")
    for column in ("figure", "target", "value", "met"):
        targets.add_column(column)
    for name, t in result["targets"].items():
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: "-"}[t["met"]]
        targets.add_row(name, t["target"], _fmt(t["value"], ".3g"), met)
    console.print(targets)
    for s in result["scenarios"]:
        cmds = ", ".join(f"{k} {v:g}" for k, v in s["commands_per_decision"].items())
        console.print(f"[dim]{s['users']} users, Redis commands per decision: {cmds}[/]")
