"""``taskgate bench webhooks`` end to end at a tiny size: every completed webhook arrives, and the
JSON has its documented shape (figures are never asserted)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from taskgate.cli import main

STAGES = {"end_to_claimed_ms", "end_to_sent_ms", "end_to_received_ms"}
CALLBACK_STAGES = {"callback_to_end_ms", "callback_to_sent_ms", "callback_to_received_ms"}


def _bench(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "webhooks", *argv, "--json"])
    assert exit_info.value.code == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("callbacks", [False, True])
def test_webhooks_bench_json_shape(
    redis_url: str, capsys: pytest.CaptureFixture[str], callbacks: bool
) -> None:
    argv = ["--tasks", "8", "--rate", "20", "--duration", "0.5", "--redis-url", redis_url]
    r = _bench(capsys, *argv, *(["--callbacks"] if callbacks else []))
    assert r["benchmark"] == "webhooks" and r["tasks"] == 8 and r["callbacks"] is callbacks
    assert r["delivered"] == 8 and r["lost"] == 0
    assert r["worker_core_pct"] >= 0 and r["poll_interval_s"] > 0
    for name in STAGES | (CALLBACK_STAGES if callbacks else set()):
        assert set(r[name]) == {"p50", "p95", "p99", "max", "n"} and r[name]["n"] == 8
    if not callbacks:
        assert all(r[name] is None for name in CALLBACK_STAGES)
