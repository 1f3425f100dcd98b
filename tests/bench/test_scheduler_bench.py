"""``taskgate bench scheduler --quick --json`` in-process against the test Redis: the JSON shape
(documented in taskgate.bench.report), the table, and that the run leaves no keys behind.
Figures only: no thresholds are asserted."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import pytest
from redis import Redis
from rich.console import Console

from taskgate.bench import report
from taskgate.cli import main

SCENARIO_KEYS = {
    "users",
    "tasks",
    "seed_s",
    "decisions",
    "dispatch_calls",
    "wall_s",
    "decisions_per_s",
    "call_ms",
    "redis_usec_per_decision",
    "redis_decisions_per_s",
    "commands_per_decision",
    "jain_index",
    "jain_window",
    "share_max_dev",
    "latency_ms",
    "latency_server_ms",
    "memory_per_task_bytes",
    "memory_breakdown_bytes",
}


def count_keys(client: Redis, pattern: str) -> int:
    return sum(1 for _ in client.scan_iter(match=pattern, count=1000))


@pytest.fixture(scope="module")
def bench_run(redis_url):
    client = Redis.from_url(redis_url)
    jobs_before = count_keys(client, "arq:job:*")
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        main(["bench", "scheduler", "--quick", "--json", "--redis-url", redis_url])
    left = (count_keys(client, "\\{bench:*"), count_keys(client, "arq:job:*") - jobs_before)
    client.close()
    return exit_info.value.code, out.getvalue(), left


def test_quick_json_is_one_object_with_the_documented_shape(bench_run):
    code, stdout, _ = bench_run
    assert code == 0
    result = json.loads(stdout)  # the whole of stdout is one JSON object
    assert result["benchmark"] == "scheduler" and result["schema"] == report.SCHEMA
    assert set(result) == {"benchmark", "schema", "redis", "config", "scenarios", "summary", "targets"}
    assert result["redis"]["private"] is False and result["config"]["quick"] is True
    assert [s["users"] for s in result["scenarios"]] == result["config"]["users"]
    for s in result["scenarios"]:
        assert set(s) == SCENARIO_KEYS
        assert s["decisions"] == s["tasks"] == result["config"]["tasks"]  # the whole backlog was dispatched
        assert s["latency_ms"]["count"] == s["latency_ms"]["sent"] == result["config"]["latency_tasks"]
        assert s["latency_server_ms"]["count"] == s["latency_ms"]["sent"]
        assert set(s["memory_breakdown_bytes"]) == {"task_hash", "ledger", "user_tasks", "flow"}
        assert s["jain_index"] is not None and 0 < s["jain_index"] <= 1
        assert s["commands_per_decision"]  # INFO commandstats saw the script's commands
    assert set(result["summary"]) == {
        "decisions_per_s_min",
        "latency_p99_ms_max",
        "scale_ratio",
        "memory_per_task_bytes_max",
        "jain_index_min",
    }
    assert set(result["targets"]) == set(report.TARGETS)
    for t in result["targets"].values():
        assert set(t) == {"target", "value", "met"} and t["met"] in (True, False)


def test_bench_leaves_no_keys_behind(bench_run):
    assert bench_run[2] == (0, 0)


def test_table_renders(bench_run):
    buf = io.StringIO()
    report.render(json.loads(bench_run[1]), Console(file=buf, width=160))
    text = buf.getvalue()
    assert "dec/s" in text and "targets" in text and "decisions_per_s" in text


def test_figures():
    assert report.jain_index([5, 5, 5]) == 1.0
    assert report.jain_index([9, 0, 0]) == pytest.approx(1 / 3)
    assert report.jain_index([]) is None
    assert report.percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0
    assert report.percentile(list(range(1, 101)), 99) == 99.0
    assert report.percentile([], 99) is None
    diff = report.commandstats_diff(
        {"cmdstat_zadd": {"calls": 10, "usec": 5}},
        {
            "cmdstat_zadd": {"calls": 30, "usec": 25},
            "cmdstat_get": {"calls": 1, "usec": 1},
            "errorstat_x": {},
        },
    )
    assert diff == {"zadd": (20, 20), "get": (1, 1)}
    built = report.build(
        {},
        {},
        [
            {
                "users": 10,
                "decisions_per_s": 12_000.0,
                "latency_ms": {"p99": 2.0},
                "memory_per_task_bytes": 900.0,
                "jain_index": 1.0,
            },
            {
                "users": 1000,
                "decisions_per_s": 6_000.0,
                "latency_ms": {"p99": 6.0},
                "memory_per_task_bytes": 1100.0,
                "jain_index": None,
            },
        ],
    )
    assert built["summary"]["scale_ratio"] == 0.5
    assert {k: v["met"] for k, v in built["targets"].items()} == dict.fromkeys(report.TARGETS, False)
