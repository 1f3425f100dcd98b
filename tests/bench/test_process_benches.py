"""The multi-process benchmarks run end to end at a tiny size (JSON shape only; figures are never
asserted)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from taskgate.bench import wrk
from taskgate.cli import main

pytestmark = pytest.mark.slow  # each starts the benchmark's processes


def _bench(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", *argv, "--json"])
    assert exit_info.value.code == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return result


def test_pipeline_bench_json_shape(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    r = _bench(
        capsys, "pipeline", "--tasks", "20", "--users", "2", "--workers", "1,2", "--redis-url", redis_url
    )
    assert r["benchmark"] == "pipeline" and r["workers"] == [1, 2]
    for w in ("1", "2"):
        assert r["taskgate"][w]["completed"] == 20
        assert set(r["taskgate"][w]) >= {
            "wall_s",
            "tasks_per_s",
            "producer_creates_per_s",
            "worker_cpu_s",
            "dispatch_ms",
            "end_to_end_ms",
        }
        assert r["arq_http"][w]["jobs_per_s"] > 0
        assert r["ratio"]["taskgate_vs_arq_http"][w] > 0 and r["ratio"]["taskgate_vs_arq_noop"][w] > 0
    assert r["arq_noop"]["jobs_per_s"] > 0


@pytest.mark.parametrize("callbacks", [False, True])
def test_inflight_bench_json_shape(
    redis_url: str, capsys: pytest.CaptureFixture[str], callbacks: bool
) -> None:
    # every task must still be upstream when the 1 s window opens (with callbacks, after the probes
    # have run): long, so a loaded machine cannot end them first; the window ends the run, not they
    duration = "30" if callbacks else "15"
    argv = ["--tasks", "10", "--duration", duration, "--window", "1", "--max-jobs", "2"]
    r = _bench(capsys, "inflight", *argv, "--redis-url", redis_url, *(["--callbacks"] if callbacks else []))
    # two arq jobs at once, yet all ten tasks held: the watcher, not the jobs, holds the wait
    assert r["benchmark"] == "inflight" and r["tasks"] == 10 and r["held"] >= 10 and r["max_jobs"] == 2
    assert r["callbacks"] is callbacks
    assert set(r) >= {
        "worker_core_pct",
        "cpu_us_per_task_s",
        "polls_per_s",
        "lease_renewals_per_s",
        "lease_renew_calls_per_s",
        "callback_latency_ms",
        "all_in_flight",
        "window_s",
        "max_inflight",
        "jobs_max",
        "wakes_per_s",
    }
    if callbacks:
        assert r["callback_latency_ms"]["probes"] == 50 and set(r["callback_latency_ms"]) >= {"p50", "p99"}
    else:
        assert r["callback_latency_ms"] is None


@pytest.mark.parametrize("loadgen", ["aiohttp", "wrk"])
def test_api_bench_json_shape(redis_url: str, capsys: pytest.CaptureFixture[str], loadgen: str) -> None:
    if loadgen == "wrk" and not wrk.available():
        pytest.skip("wrk is not installed (Debian: apt-get install wrk)")
    argv = ["--seconds", "0.5", "--connections", "2", "--loadgen", loadgen, "--redis-url", redis_url]
    r = _bench(capsys, "api", *argv)
    assert r["benchmark"] == "api" and r["loadgen"] == loadgen and r["api_log_level"] == "WARNING"
    for phase in ("create", "read"):
        assert r[phase]["statuses"].get("200", 0) > 0 and set(r[phase]["statuses"]) == {"200"}
        assert set(r[phase]["latency_ms"]) == {"p50", "p99"}
        assert r[phase]["api_cpu_ms_per_request"] > 0 and r[phase]["api_cpu_pct"] > 0
        assert r[phase]["redis_cpu_ms_per_request"] > 0  # the test Redis is a local process


def test_api_bench_falls_back_to_aiohttp_without_wrk(
    redis_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wrk.shutil, "which", lambda name: None)
    r = _bench(capsys, "api", "--seconds", "0.5", "--connections", "2", "--redis-url", redis_url)
    assert r["loadgen"] == "aiohttp" and r["create"]["statuses"].get("200", 0) > 0
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "api", "--loadgen", "wrk", "--redis-url", redis_url])
    assert exit_info.value.code == 2 and "apt-get install wrk" in capsys.readouterr().err


def test_wrk_output_is_parsed_and_its_absence_is_an_error() -> None:
    line = wrk.RESULT_MARK + (
        '{"requests": 10, "duration_us": 2000000, "p50_us": 1500, "p99_us": 9000, '
        '"socket_errors": 0, "statuses": {"200": 9, "503": 1}}'
    )
    parsed = wrk.parse_output("Running 2s test\n" + line + "\n")
    assert parsed == {
        "requests": 10,
        "wall_s": 2.0,
        "statuses": {"200": 9, "503": 1},
        "latency_ms": {"p50": 1.5, "p99": 9.0},
        "socket_errors": 0,
    }
    with pytest.raises(RuntimeError, match="no result"):
        wrk.parse_output("unable to connect\n")
