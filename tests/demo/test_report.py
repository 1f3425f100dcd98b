"""The demo's report logic on hand-made data: ledger cross-check, caps, waits, workload plan."""

from __future__ import annotations

import inspect
import random
from collections import Counter

from taskgate.dev.demo_driver import Driver
from taskgate.dev.demo_render import html_page
from taskgate.dev.demo_report import (
    AccountRun,
    DemoData,
    UserRun,
    build_summary,
    check_ledger,
    percentile,
)
from taskgate.dev.demo_workload import MAX_PAUSE_S, PERSONAS, plan_workload, split_tasks


def _view(task_id: str, status: str, consume: int, unit: str = "mj_quota", private: bool = False) -> dict:
    return {
        "task_id": task_id,
        "status": status,
        "error": {"message": ""},
        "meta": {
            "usage": {"type": unit, "frozen": 14, "consume": consume},
            "is_using_private_pool": private,
            "created_at": "2026-01-01T00:00:00Z",
            "started_at": "2026-01-01T00:00:00.250Z",
        },
    }


def _entry(kind: str, amount: int, task: str = "", unit: str = "mj_quota") -> dict[str, str]:
    return {"kind": kind, "amount": str(amount), "task": task, "unit": unit}


def _user(**overrides) -> UserRun:
    user = UserRun("dev", "u1", "developer", 9, False, 2)
    user.views = [_view("a", "completed", 14), _view("b", "failed", 0)]
    user.ledger = [
        _entry("top_up", 100),
        _entry("freeze", 14, "a"),
        _entry("freeze", 14, "b"),
        _entry("charge", 14, "a"),
        _entry("refund", 14, "b"),
    ]
    user.balances = {"mj_quota": {"available": 86, "frozen": 0, "consumed": 14}}
    for name, value in overrides.items():
        setattr(user, name, value)
    return user


def test_ledger_that_balances_matches():
    assert check_ledger(_user()) == []


def test_ledger_charge_differing_from_meta_consume_is_reported():
    user = _user()
    user.views[1] = _view("b", "failed", 14)
    problems = check_ledger(user)
    assert any("task b" in p and "consume 14" in p for p in problems)


def test_money_left_frozen_or_unknown_task_or_wallet_drift_is_reported():
    user = _user(balances={"mj_quota": {"available": 80, "frozen": 6, "consumed": 14}})
    user.ledger.append(_entry("charge", 3, "ghost"))
    problems = " | ".join(check_ledger(user))
    assert "still frozen" in problems and "unknown task ghost" in problems
    assert "wallet available 80" in problems and "wallet consumed 14, ledger 17" in problems


def test_conversion_between_units_is_part_of_the_balance():
    user = _user()
    user.ledger[0] = _entry("top_up", 1000, unit="credits")
    user.ledger[1:1] = [_entry("convert_out", -700, "a", "credits"), _entry("convert_in", 200, "a")]
    user.balances = {
        "mj_quota": {"available": 186, "frozen": 0, "consumed": 14},
        "credits": {"available": 300, "frozen": 0, "consumed": 0},
    }
    assert check_ledger(user) == []
    user.balances["credits"]["available"] = 1000  # the conversion never left the credits wallet
    assert check_ledger(user) == ["credits: wallet available 1000, ledger says 300"]


def test_summary_flags_cap_overrun_stuck_tasks_and_passes_clean_runs():
    account = AccountRun("acc", "shared", 2, 2, "active")
    clean = DemoData(1, 2, "demo-x", "test", 1.0, [_user(peak=9)], [account])
    summary = build_summary(clean)
    assert summary["ok"] and summary["users"][0]["ledger_matches"]
    assert summary["waits"]["developer"] == {"n": 2, "median_ms": 250.0, "p95_ms": 250.0}
    assert "<svg" in html_page(summary)
    account.peak = 3
    over = DemoData(
        1,
        2,
        "demo-x",
        "test",
        1.0,
        [_user(peak=10)],
        [account],
        stuck=[{"task_id": "c", "user": "dev", "status": "pending"}],
    )
    problems = build_summary(over)["problems"]
    assert not build_summary(over)["ok"] and len(problems) == 3


def test_byoa_failover_counts_tasks_off_the_private_pool():
    user = _user(byoa=True, failover_ids={"b"})
    user.views[0] = _view("a", "completed", 0, private=True)
    user.ledger = [e for e in user.ledger if e["task"] != "a"]
    user.balances = {"mj_quota": {"available": 100, "frozen": 0, "consumed": 0}}
    summary = build_summary(DemoData(1, 2, "p", "r", 1.0, [user], []))
    assert summary["users"][0]["failed_over"] == 1 and summary["users"][0]["completed_on_own_accounts"] == 1


def test_percentile_is_nearest_rank():
    assert percentile([5.0], 95) == 5.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_workload_is_reproducible_and_has_the_special_tasks():
    first, again = plan_workload(30, random.Random(3)), plan_workload(30, random.Random(3))
    assert first == again  # bodies, cancels and the pauses between submits: the whole workload
    assert sum(split_tasks(30).values()) == 30 and set(first) == {p.label for p in PERSONAS}
    assert sum(len(ts) for ts in first.values()) == 33  # + the prompt checker's, the 402's and the ban's
    byoa_prompts = [t.body["input"].get("prompt", "") for t in first["byoa"]]
    assert any("outcome=banned" in p for p in byoa_prompts[:5])
    kinds = Counter(t.kind for ts in plan_workload(300, random.Random(1)).values() for t in ts)
    assert {"mj-relax", "mj-fast", "mj-turbo", "flux", "kling", "suno"} <= set(kinds)


def test_a_seed_fixes_every_random_choice_of_the_workload_and_another_seed_changes_it():
    """Pauses and cancel delays are planned up front: while the users submit concurrently nothing
    draws from the seeded generator any more, so their interleaving cannot change what runs."""
    plans = [plan_workload(60, random.Random(seed)) for seed in (5, 5, 6)]
    assert plans[0] == plans[1] and plans[0] != plans[2]
    pauses = [t.pause_s for ts in plans[0].values() for t in ts]
    assert all(0 <= p <= MAX_PAUSE_S for p in pauses) and len(set(pauses)) > 1
    assert "rng" not in inspect.signature(Driver.submit_all).parameters
