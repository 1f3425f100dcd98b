"""Which tests share a pytest-xdist worker under `make test` (``--dist loadscope``, with the scope
rule below in place of xdist's module-or-class one; ``loadgroup`` and its ``xdist_group`` marks
group nothing with pytest 9.2 and xdist 3.8).

Tests are scheduled one by one, except those that share an expensive set-up or must not run beside
each other: a module whose module-scoped fixture starts something big, and the chaos scenarios,
which run in two lanes (a class each), so at most two clusters of real processes share the cores."""

from __future__ import annotations

from typing import Any

TOGETHER = {
    "tests/ha/test_sentinel.py": "module",  # one Sentinel set (five redis processes)
    "tests/demo/test_demo.py": "module",  # one demo run
    "tests/bench/test_scheduler_bench.py": "module",  # one scheduler benchmark run
    "tests/chaos/test_chaos.py": "class",  # TestRoleFaults, TestStoreFaults
}


def scope_of(nodeid: str) -> str:
    """The unit of scheduling of a test: its module, its class, or itself."""
    parts = nodeid.split("::")
    how = TOGETHER.get(parts[0])
    if how == "module":
        return parts[0]
    if how == "class" and len(parts) > 2:
        return "::".join(parts[:2])
    return nodeid


def make_scheduler(config: Any, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return Scheduling(config, log)
