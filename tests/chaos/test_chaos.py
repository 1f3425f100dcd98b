"""The short chaos suite (`taskgate bench chaos` is the full one): real processes, real faults,
and every lost / double / violation / leak / money figure must be zero.

The scenarios are in two classes of about equal length (by their measured wall times): under
xdist (`make test`, ``--dist loadscope``) each class runs on one worker, so at most two clusters of
real processes share the cores at once."""

from __future__ import annotations

import gc

import pytest

from taskgate.bench.chaos import SCENARIOS, ZERO_FIGURES, run_scenario

ROLE_FAULTS = ("callbacks", "kill_api", "kill_scheduler", "kill_worker", "webhook_receiver")
STORE_FAULTS = ("failover_redis", "kill_redis", "pause_redis")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    # connections cut by the killed or paused redis-server are garbage-collected here, not in later tests
    pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"),
]


async def _loses_nothing(scenario: str) -> None:
    result = await run_scenario(scenario, n_tasks=80, seed=3)
    gc.collect()
    assert result["acknowledged"] > 0  # an unacknowledged create may or may not exist; both are fine
    assert result["faults"] >= 1, result
    assert {f: result[f] for f in ZERO_FIGURES} == dict.fromkeys(ZERO_FIGURES, 0), result
    assert result["completed"] + result["failed"] == result["acknowledged"]


class TestRoleFaults:
    """A taskgate process dies: worker, scheduler, API (with upstream callbacks and webhooks on)."""

    @pytest.mark.parametrize("scenario", ROLE_FAULTS)
    async def test_chaos_scenario_loses_nothing(self, scenario: str) -> None:
        await _loses_nothing(scenario)


class TestStoreFaults:
    """Redis is killed, paused, or its master fails over through Sentinel."""

    @pytest.mark.parametrize("scenario", STORE_FAULTS)
    async def test_chaos_scenario_loses_nothing(self, scenario: str) -> None:
        await _loses_nothing(scenario)


def test_every_scenario_is_run_once():
    assert sorted(ROLE_FAULTS + STORE_FAULTS) == sorted(SCENARIOS)
