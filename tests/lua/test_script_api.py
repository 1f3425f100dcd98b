"""The typed script layer (store/script_api/): one function per registered script whose
parameters are the script's ARGV names in header order; ARGV counts are checked at call time."""

from __future__ import annotations

import inspect
import re

import pytest

from taskgate.store import script_api
from taskgate.store import scripts as registry
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts

PACKAGE = registry.PACKAGE_ROOT
# Raw ``Scripts.call`` outside the typed layer, and why: the scheduler bench replays prebuilt
# create_task KEYS/ARGV (also pipelined as raw EVALSHA) to load Redis as fast as it can.
RAW_CALLERS = {"bench/scheduler.py"}


def test_every_script_has_a_typed_function(scripts: Scripts) -> None:
    assert set(script_api.TYPED) == set(scripts.sources)
    # the retry and WAIT sets name real scripts (a typo would silently drop a retry)
    assert not (registry.IDEMPOTENT | registry.DURABLE) - set(scripts.sources)


def test_typed_parameters_match_the_lua_headers(scripts: Scripts) -> None:
    """Keyword parameters (less those that only build KEYS) are the header's ARGV names in order;
    ``base`` is always Keys.base, never a parameter."""
    for name, typed in script_api.TYPED.items():
        params = inspect.signature(typed.function).parameters.values()
        keyword = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
        assert set(typed.key_args) <= set(keyword), name
        argv = [n for n in scripts.sources[name].arg_names if n != "base"]
        assert [p for p in keyword if p not in typed.key_args] == argv, name


def test_only_the_typed_layer_calls_scripts_by_name() -> None:
    callers = set()
    for py in PACKAGE.rglob("*.py"):
        if re.search(r'\.call\(\s*"[a-z_]+",\s*keys=', py.read_text()):
            callers.add(py.relative_to(PACKAGE).as_posix())
    typed_layer = {p for p in callers if p.startswith("store/script_api/")}
    assert typed_layer and callers - typed_layer == set(RAW_CALLERS)


async def test_wrong_argv_count_is_refused(scripts: Scripts, keys: Keys) -> None:
    task_keys = [keys.task("t1")]
    with pytest.raises(ValueError, match="cancel_task takes 4 args, got 3"):
        await scripts.call("cancel_task", keys=task_keys, args=[keys.base, "", "t1"])
    with pytest.raises(ValueError, match="cancel_task takes 4 args, got 5"):
        await scripts.call("cancel_task", keys=task_keys, args=[keys.base, "", "t1", "u1", "x"])
    # variadic: the fixed part is required, any number of further arguments is accepted
    with pytest.raises(ValueError, match="cancel_tasks takes at least 3 args, got 2"):
        await scripts.call("cancel_tasks", keys=[keys.user("u1")], args=[keys.base, ""])
    assert (await scripts.call("count_pending", keys=[keys.flow_meta()], args=[keys.base]))[0] == 0


def test_argv_header_lines_are_numbered_with_only_the_last_variadic() -> None:
    ok = "-- x.lua: y\n-- KEYS[1] k\n-- ARGV[1] base  b\n-- ARGV[2..] ids  many"
    assert registry.parse_argv(ok, "x") == (("base", "ids"), True)
    for bad in (
        "-- ARGV[1] a\n-- ARGV[3] b",
        "-- ARGV[1..] a\n-- ARGV[2] b",
        "-- ARGV[2] a",
    ):
        with pytest.raises(ValueError, match="numbered"):
            registry.parse_argv(bad, "x")


async def test_typed_functions_round_trip(scripts: Scripts, keys: Keys) -> None:
    """A few typed answers against real Redis: dataclass results and entity-named not-found."""
    created = await script_api.put_account(
        scripts, keys, account_id="a1", fields={"owner": "shared", "provider": "sim"}, secret="s"
    )
    assert created is True
    assert await script_api.put_account(scripts, keys, account_id="a1", fields={}, secret="") is False
    change = await script_api.set_account_state(
        scripts, keys, account_id="a1", state="disabled", until_ms=0, by="operator", reason="test"
    )
    assert change.new_state == "disabled"
    assert await script_api.remove_account(scripts, keys, account_id="a1") is True
    assert await script_api.remove_account(scripts, keys, account_id="a1") is False


def test_every_not_found_reply_names_its_entity() -> None:
    """``{-1, '<entity>', id}``: error_from_script turns it into NotFound(entity, id)."""
    replies = []
    for lua in PACKAGE.glob("*/lua/**/*.lua"):
        replies += re.findall(r"return \{-1\b[^}]*\}", lua.read_text())
    assert replies
    assert [r for r in replies if not re.match(r"return \{-1, '[a-z ]+'", r)] == []
