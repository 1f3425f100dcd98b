"""``--seed`` repeats a run's random choices: the chaos suite's faults (which process dies) and the
simulator's jitter it is handed; the demo's workload is covered in ``tests/demo/test_report.py``."""

from __future__ import annotations

import random
from types import SimpleNamespace

from taskgate.bench import chaos
from taskgate.bench.chaos_cluster import Cluster


class FakeProc:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def kill(self) -> None:
        self.log.append(self.name)

    def start(self) -> None:
        pass

    async def wait_logged(self, event: str) -> None:
        pass


async def _fault_targets(seed: int, rounds: int = 30) -> list[str]:
    """The processes the ``callbacks`` scenario's faults hit, in order, for ``seed``."""
    log: list[str] = []
    cluster = SimpleNamespace(
        workers=[FakeProc(f"worker{i}", log) for i in range(3)], api=FakeProc("api", log)
    )

    async def api_back() -> None:
        pass

    cluster.wait_api = api_back
    rng = random.Random(seed)
    for _ in range(rounds):
        await chaos.kill_worker_or_api(cluster, rng)  # type: ignore[arg-type]
    return log


async def test_a_chaos_seed_repeats_which_process_each_fault_hits(monkeypatch):
    monkeypatch.setattr(chaos.asyncio, "sleep", _no_sleep)  # kill_api waits before the restart
    first, again, other = await _fault_targets(4), await _fault_targets(4), await _fault_targets(5)
    assert first == again and first != other
    assert {"api", "worker0", "worker1", "worker2"} == set(first)


def test_a_chaos_seed_reaches_every_process_as_the_simulator_seed():
    for seed in (1, 42):
        cluster = Cluster(seed=seed)
        try:
            assert cluster.env["TASKGATE_SIM_SEED"] == str(seed)
            assert all(proc.env is cluster.env for proc in (cluster.sim, cluster.api, *cluster.workers))
        finally:
            cluster.stop()  # nothing started: removes its temporary directory


async def _no_sleep(_: float) -> None:
    pass
