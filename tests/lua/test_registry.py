"""Every Lua file has a header and is registered; wrappers pass as many KEYS as the header names;
keys that Lua builds from Keys.base match the Keys methods."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from taskgate.store import scripts as registry
from taskgate.store.keys import Keys, flow_id

PACKAGE = Path(registry.__file__).resolve().parent.parent


def test_every_script_has_a_header_and_is_registered(scripts):
    paths = registry.script_paths()
    assert len(paths) >= 10
    for path in paths:
        assert registry.header_problems(path.read_text(), path.stem) == [], path
        assert path.stem in scripts.sources
        assert scripts.sources[path.stem].n_keys >= 1


def test_libraries_are_only_included_never_registered(scripts):
    libs = list(PACKAGE.glob("*/lua/lib/*.lua"))
    assert libs
    assert not {p.stem for p in libs} & set(scripts.sources)


def test_python_callers_name_registered_scripts(scripts):
    """Every ``call("<name>", keys=[...])`` in the package names a registered script."""
    called = set()
    for py in PACKAGE.rglob("*.py"):
        called |= set(re.findall(r'call\(\s*"([a-z_]+)"', py.read_text()))
    assert called <= set(scripts.sources), called - set(scripts.sources)


async def test_wrong_key_count_is_refused(scripts):
    with pytest.raises(ValueError, match="takes"):
        await scripts.call("cancel_task", keys=[], args=[])


def test_include_cycle_is_detected(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "PACKAGE_ROOT", tmp_path)
    (tmp_path / "a.lua").write_text('--- @include "a.lua"\n')
    with pytest.raises(ValueError, match="cycle"):
        registry._expand_includes('--- @include "a.lua"\n')


def test_lua_built_keys_match_keys_module():
    """The formats that Lua rebuilds from Keys.base (see lib/*.lua) equal the Keys methods."""
    keys = Keys("tg")
    b = keys.base
    flow = flow_id("fast", "ppu", "u1", "midjourney", "")
    assert flow == "fast|ppu|u1|midjourney|"
    expected = {
        f"{b}:flow:{flow}": keys.flow(flow),
        f"{b}:ready:fast": keys.ready("fast"),
        f"{b}:task:t1": keys.task("t1"),
        f"{b}:user:u1": keys.user("u1"),
        f"{b}:user_leases:u1": keys.user_leases("u1"),
        f"{b}:account:a1": keys.account("a1"),
        f"{b}:account_leases:a1": keys.account_leases("a1"),
        f"{b}:account_failures:a1": keys.account_failures("a1"),  # read_cluster.lua
        f"{b}:account_mode_leases:a1:relax": keys.account_mode_leases("a1", "relax"),
        f"{b}:account_daily:a1:20270115": keys.account_daily("a1", "20270115"),
        f"{b}:avail:u1#backup:midjourney:fast": keys.avail("u1#backup", "midjourney", "fast"),
        f"{b}:parked_cap:shared:midjourney:fast": keys.parked_cap("shared", "midjourney", "fast"),
        f"{b}:parked_user:u1": keys.parked_user("u1"),
        f"{b}:flow_meta": keys.flow_meta(),
        f"{b}:flow_wait": keys.flow_wait(),
        f"{b}:parked_task:shared:midjourney:fast": keys.parked_task("shared", "midjourney", "fast"),
        f"{b}:tasks_aside": keys.tasks_aside(),
        f"{b}:pending_deadlines": keys.pending_deadlines(),
        f"{b}:relax_waiting": keys.relax_waiting(),
        f"{b}:sched": keys.sched(),
        f"{b}:sched_wake": keys.sched_wake(),
        f"{b}:wallet:u1": keys.wallet("u1"),
        f"{b}:ledger:u1": keys.ledger("u1"),
        f"{b}:daily:u1:20270115": keys.daily("u1", "20270115"),
        f"{b}:task_failed:t1": keys.task_failed_accounts("t1"),
        f"{b}:owner_accounts:u1": keys.owner_accounts("u1"),
        f"{b}:account_events:u1": keys.account_events("u1"),
        f"{b}:webhook_outbox": keys.webhook_outbox(),
        f"{b}:webhook_delivery:t1:1": keys.webhook_delivery("t1:1"),
    }
    for lua_form, python_form in expected.items():
        assert lua_form == python_form
    # and each of those Lua forms really occurs in some Lua source
    sources = "\n".join(p.read_text() for p in PACKAGE.glob("*/lua/**/*.lua"))
    for entity in (
        "flow",
        "ready",
        "task",
        "user",
        "user_leases",
        "account_leases",
        "account_mode_leases",
        "avail",
        "parked_cap",
        "parked_user",
        "flow_meta",
        "flow_wait",
        "parked_task",
        "tasks_aside",
        "pending_deadlines",
        "relax_waiting",
        "wallet",
        "ledger",
        "daily",
        "task_failed",
        "account_events",
        "sched_wake",
    ):
        assert f"':{entity}" in sources or f"':{entity}:" in sources, entity


def test_no_key_literals_outside_keys_module():
    """Key formats live in store/keys.py only (Lua mirrors them from Keys.base)."""
    offenders = []
    for py in PACKAGE.rglob("*.py"):
        if py.name == "keys.py":
            continue
        for line in py.read_text().splitlines():
            if re.search(r'f"\{[^}]*(base|prefix)[^}]*\}:', line):
                offenders.append(f"{py.name}: {line.strip()}")
    assert offenders == []
