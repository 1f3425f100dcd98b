"""`taskgate bench throughput --json` runs end to end (shape only; figures are not asserted)."""

from __future__ import annotations

import json

import pytest

from taskgate.cli import main


def test_throughput_bench_json_shape(redis_url, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "throughput", "--tasks", "30", "--users", "2", "--redis-url", redis_url, "--json"])
    assert exit_info.value.code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["benchmark"] == "throughput" and result["taskgate"]["completed"] == 30
    assert result["taskgate"]["tasks_per_s"] > 0 and result["arq_noop"]["jobs_per_s"] > 0
    assert set(result["taskgate"]["end_to_end_ms"]) == {"p50", "p99"}
