"""The ``taskgate demo`` report's figures: per-user results, caps, ledger cross-check, waits (the
summary ``demo_render`` prints and writes).

Everything here is computed from what the demo collected after the run (final task objects read
over the HTTP API, ledger streams, wallets, concurrency peaks); nothing talks to Redis or HTTP."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SETTLE_KINDS = ("freeze", "charge", "penalty", "refund")
REFUSED_EXPECTED = frozenset({400, 402, 429})  # refusals at submit that are part of the product
MAX_PROBLEMS_SHOWN = 8


@dataclass(slots=True)
class UserRun:
    """What the demo saw of one seeded user."""

    label: str
    user_id: str
    plan: str
    cap: int
    byoa: bool
    planned: int
    views: list[dict[str, Any]] = field(default_factory=list)  # final task objects (GET /api/v1/task)
    refused: Counter[int] = field(default_factory=Counter)  # HTTP status -> submissions refused
    cancels: int = 0
    failover_ids: set[str] = field(default_factory=set)  # task hash field failover == "1"
    peak: int = 0  # most PPU tasks processing at once (ZCARD of the user's leases)
    ledger: list[dict[str, str]] = field(default_factory=list)
    balances: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(slots=True)
class AccountRun:
    account_id: str
    owner: str  # "shared" or the owning user's label
    capacity: int
    peak: int
    state: str


@dataclass(slots=True)
class DemoData:
    seed: int
    tasks: int
    prefix: str
    redis: str
    elapsed_s: float
    users: list[UserRun]
    accounts: list[AccountRun]
    stuck: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# --- money -------------------------------------------------------------------------------------------


def ledger_sums(ledger: list[dict[str, str]]) -> tuple[dict[str, Counter[str]], dict[str, Counter[str]]]:
    """Signed sums per unit and kind, and per task and settlement kind."""
    per_unit: dict[str, Counter[str]] = defaultdict(Counter)
    per_task: dict[str, Counter[str]] = defaultdict(Counter)
    for entry in ledger:
        kind, unit, amount = entry.get("kind", ""), entry.get("unit", ""), int(entry.get("amount", "0"))
        per_unit[unit][kind] += amount
        task = entry.get("task", "")
        if task and kind in SETTLE_KINDS:
            per_task[task][kind] += amount
    return per_unit, per_task


def check_ledger(user: UserRun) -> list[str]:
    """B2/B3 cross-check: ledger vs every task's ``meta.usage.consume`` and vs the wallet."""
    per_unit, per_task = ledger_sums(user.ledger)
    problems: list[str] = []
    seen: set[str] = set()
    for view in user.views:
        task_id, usage = view["task_id"], view["meta"]["usage"]
        seen.add(task_id)
        moves = per_task.get(task_id, Counter())
        charged = moves["charge"] + moves["penalty"]
        if charged != int(usage.get("consume") or 0):
            problems.append(
                f"task {task_id}: ledger charged {charged}, meta.usage.consume {usage.get('consume')}"
            )
        if moves["freeze"] != charged + moves["refund"]:
            problems.append(
                f"task {task_id}: froze {moves['freeze']}, charged {charged} + refunded {moves['refund']}"
            )
    problems += [f"ledger moves money for unknown task {t}" for t in sorted(set(per_task) - seen)]
    for unit, balance in sorted(user.balances.items()):
        sums = per_unit.get(unit, Counter())
        available = (
            sums["top_up"]
            + sums["adjust"]
            + sums["convert_in"]
            + sums["convert_out"]
            - sums["freeze"]
            + sums["refund"]
        )
        if balance.get("frozen", 0) != 0:
            problems.append(f"{unit}: {balance['frozen']} still frozen at rest")
        if balance.get("consumed", 0) != sums["charge"] + sums["penalty"]:
            problems.append(
                f"{unit}: wallet consumed {balance.get('consumed')}, ledger "
                f"{sums['charge'] + sums['penalty']}"
            )
        if balance.get("available", 0) != available:
            problems.append(f"{unit}: wallet available {balance.get('available')}, ledger says {available}")
    return problems


def unit_totals(ledger: list[dict[str, str]]) -> dict[str, dict[str, int]]:
    per_unit, _ = ledger_sums(ledger)
    out = {}
    for unit, sums in sorted(per_unit.items()):
        out[unit] = {
            "deposited": sums["top_up"] + sums["adjust"],
            "converted_in": sums["convert_in"],
            "converted_out": -sums["convert_out"],
            "frozen": sums["freeze"],
            "charged": sums["charge"] + sums["penalty"],
            "penalty": sums["penalty"],
            "refunded": sums["refund"],
        }
    return out


# --- times -------------------------------------------------------------------------------------------


def _ms(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000


def wait_ms(view: dict[str, Any]) -> float | None:
    """From ``created_at`` to ``started_at`` (None when the task never started)."""
    created, started = _ms(view["meta"].get("created_at")), _ms(view["meta"].get("started_at"))
    if created is None or started is None:
        return None
    return max(started - created, 0.0)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def waits_by_plan(users: list[UserRun]) -> dict[str, dict[str, float]]:
    by_plan: dict[str, list[float]] = defaultdict(list)
    for user in users:
        by_plan[user.plan] += [w for w in (wait_ms(v) for v in user.views) if w is not None]
    return {
        plan: {"n": len(w), "median_ms": round(percentile(w, 50), 1), "p95_ms": round(percentile(w, 95), 1)}
        for plan, w in sorted(by_plan.items())
        if w
    }


# --- the summary -------------------------------------------------------------------------------------


def user_summary(user: UserRun) -> dict[str, Any]:
    statuses = Counter(v["status"] for v in user.views)
    cancelled = sum(1 for v in user.views if v["status"] == "failed" and v["error"]["message"] == "cancelled")
    problems = check_ledger(user)
    out: dict[str, Any] = {
        "label": user.label,
        "user_id": user.user_id,
        "plan": user.plan,
        "byoa": user.byoa,
        "planned": user.planned,
        "submitted": len(user.views),
        "completed": statuses["completed"],
        "failed": statuses["failed"],
        "cancelled": cancelled,
        "cancel_requests": user.cancels,
        "refused": {str(code): n for code, n in sorted(user.refused.items())},
        "peak_concurrency": user.peak,
        "cap": user.cap,
        "cap_held": user.peak <= user.cap,
        "units": unit_totals(user.ledger),
        "ledger_matches": not problems,
        "ledger_problems": problems,
    }
    if user.byoa:
        private = {v["task_id"] for v in user.views if v["meta"]["is_using_private_pool"]}
        out["failed_over"] = sum(
            1 for v in user.views if v["task_id"] in user.failover_ids or v["task_id"] not in private
        )
        out["completed_on_own_accounts"] = sum(
            1 for v in user.views if v["task_id"] in private and v["status"] == "completed"
        )
    return out


def build_summary(data: DemoData) -> dict[str, Any]:
    users = [user_summary(u) for u in data.users]
    accounts = [
        {
            "account_id": a.account_id,
            "owner": a.owner,
            "capacity": a.capacity,
            "peak": a.peak,
            "capacity_held": a.peak <= a.capacity,
            "state": a.state,
        }
        for a in data.accounts
    ]
    problems = list(data.problems)
    problems += [
        f"{u['label']}: {u['peak_concurrency']} PPU tasks at once, cap {u['cap']}"
        for u in users
        if not u["cap_held"]
    ]
    problems += [
        f"account {a['account_id']}: {a['peak']} tasks at once, capacity {a['capacity']}"
        for a in accounts
        if not a["capacity_held"]
    ]
    problems += [f"{u['label']}: ledger mismatch" for u in users if not u["ledger_matches"]]
    problems += [f"{len(data.stuck)} task(s) not final"] if data.stuck else []
    return {
        "ok": not problems,
        "seed": data.seed,
        "tasks": data.tasks,
        "key_prefix": data.prefix,
        "redis": data.redis,
        "elapsed_s": round(data.elapsed_s, 2),
        "users": users,
        "accounts": accounts,
        "waits": waits_by_plan(data.users),
        "stuck": data.stuck,
        "problems": problems,
    }
