"""The xdist scheduling rules of `make test` (``tests/scheduling.py``) name real modules and classes:
a renamed module would silently lose its grouping (a second Sentinel set, chaos lanes in parallel)."""

from __future__ import annotations

from pathlib import Path

from tests.scheduling import TOGETHER, scope_of

ROOT = Path(__file__).resolve().parents[2]


def test_every_grouped_module_exists():
    assert all((ROOT / module).is_file() for module in TOGETHER)


def test_a_module_a_class_or_the_test_alone():
    demo = "tests/demo/test_demo.py::test_demo_writes_json_and_html_report"
    assert scope_of(demo) == "tests/demo/test_demo.py"
    chaos = "tests/chaos/test_chaos.py::{}::test_chaos_scenario_loses_nothing[{}]"
    role, store = chaos.format("TestRoleFaults", "kill_api"), chaos.format("TestStoreFaults", "kill_redis")
    assert scope_of(role) == "tests/chaos/test_chaos.py::TestRoleFaults" != scope_of(store)
    alone = "tests/lua/test_create_task.py::test_creates[x]"
    assert scope_of(alone) == alone


def test_the_chaos_lanes_are_the_classes_of_the_chaos_module():
    text = (ROOT / "tests/chaos/test_chaos.py").read_text()
    assert "class TestRoleFaults:" in text and "class TestStoreFaults:" in text
