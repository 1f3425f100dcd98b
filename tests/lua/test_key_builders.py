"""Lua and Python build the same keys (docs/architecture.md#keyspace).

The builders in store/lua/lib/keys.lua are *run* in Redis and compared with ``Keys``; every inline key
build left in a script (``base .. ':<name>:'``) must name one of ``Keys``' formats."""

from __future__ import annotations

import inspect
import re

import pytest

from taskgate.store.keys import Keys
from taskgate.store.scripts import PACKAGE_ROOT, script_paths

LIB = (PACKAGE_ROOT / "store/lua/lib/keys.lua").read_text()
BUILDERS = re.findall(r"^function K\.(\w+)\(base(?:, )?([\w, ]*)\)", LIB, re.MULTILINE)
INLINE = re.compile(r"base \.\. '(:[a-z_]+)(:?)'")


def keys_methods() -> dict[str, list[str]]:
    """Keys' key methods and their parameter names."""
    out = {}
    for name, fn in inspect.getmembers(Keys, inspect.isfunction):
        if not name.startswith("_") and name != "pattern":
            out[name] = [p for p in inspect.signature(fn).parameters if p != "self"]
    return out


def sample_args(params: list[str]) -> list[str]:
    return [f"{p.upper()}{i}" for i, p in enumerate(params)]


def test_every_builder_is_a_keys_method_with_the_same_arity():
    methods = keys_methods()
    assert len(BUILDERS) >= 30
    for name, params in BUILDERS:
        assert name in methods, f"K.{name} has no Keys.{name}"
        lua_params = [p.strip() for p in params.split(",") if p.strip()]
        assert len(lua_params) == len(methods[name]), name


@pytest.mark.parametrize("name,params", BUILDERS, ids=[b[0] for b in BUILDERS])
async def test_lua_builder_equals_keys(redis, keys, name, params):
    args = sample_args([p.strip() for p in params.split(",") if p.strip()])
    script = LIB + f"\nreturn K.{name}(ARGV[1], unpack(ARGV, 2))"
    built = await redis.eval(script, 0, keys.base, *args)
    assert built.decode() == getattr(keys, name)(*args)


def test_inline_key_builds_use_keys_formats():
    """A format renamed in keys.py, or misspelt in a script, fails here (until every script uses K)."""
    keys = Keys("p")
    formats = set()
    for name, params in keys_methods().items():
        if name.startswith("arq_job"):  # arq's keys: checked by tests/e2e/test_one_slot.py
            continue
        built = getattr(keys, name)(*sample_args(params)) if params else getattr(keys, name)()
        segment = built.removeprefix(keys.base).split(":")[1]
        formats.add((":" + segment, ":" if params else ""))
    found = set()
    for path in [*script_paths(), *PACKAGE_ROOT.glob("*/lua/lib/*.lua")]:
        for m in INLINE.finditer(path.read_text()):
            found.add((path.name, m.group(1), m.group(2)))
    assert len(found) > 20
    unknown = {f for f in found if (f[1], f[2]) not in formats}
    assert not unknown, f"inline key builds that match no Keys format: {sorted(unknown)}"
