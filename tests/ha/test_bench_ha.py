"""`taskgate bench ha` runs end to end on its own Sentinel set (figures are reported, not asserted)."""

from __future__ import annotations

import gc

import pytest

from taskgate.bench.ha import measure


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
async def test_bench_ha_measures_both_settings():
    result = await measure(n_tasks=20, concurrency=4, rounds=1)
    gc.collect()
    assert set(result["settings"]) == {"0", "1"}
    for figures in result["settings"].values():
        assert figures["creates_per_s"] > 0 and figures["p99_ms"] >= figures["p50_ms"] > 0
    assert result["cost_pct"] is not None
