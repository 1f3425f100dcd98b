"""Registry of the Lua scripts: every ``<package>/lua/<verb_noun>.lua`` file, loaded once.

Each file opens with a header (``-- <name>.lua: purpose``, one ``-- KEYS[i] name`` line per key,
``-- ARGV[i] name`` lines, ``-- Returns:`` and ``-- Errors:``). Shared Lua fragments live in
``lua/lib/`` folders and are pulled in by a line ``--- @include "<package>/lua/lib/<name>.lua"``.
Scripts return a table whose first item is a status: ``>= 0`` success, ``< 0`` a
``ScriptErrorCode``; ``Scripts.call`` raises the mapped exception for the latter.

Rules whose figures are catalogue data reach Lua through a line ``--- @catalogue auto_convert``: when
the scripts load, it becomes ``local AUTO_CONVERT = {...}`` built from the catalogue the process runs
with (B7, docs/rules.md#b7), so the TOML is the only place those figures are written.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from taskgate.errors import error_from_script

if TYPE_CHECKING:
    from taskgate.catalogue import Catalogue

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
INCLUDE_RE = re.compile(r'^--- @include "([^"]+)"\s*$', re.MULTILINE)
KEY_LINE_RE = re.compile(r"^-- KEYS\[(\d+)\]", re.MULTILINE)
REQUIRED_HEADER = ("-- KEYS[", "-- ARGV[", "-- Returns:", "-- Errors:")
CATALOGUE_RE = re.compile(r"^--- @catalogue (\w+)\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class ScriptSource:
    name: str
    path: Path
    text: str
    n_keys: int


def script_paths() -> list[Path]:
    return sorted(p for p in PACKAGE_ROOT.glob("*/lua/*.lua"))


def _expand_includes(text: str, seen: tuple[str, ...] = ()) -> str:
    def replace(m: re.Match[str]) -> str:
        rel = m.group(1)
        if rel in seen:
            raise ValueError(f"include cycle at {rel}")
        return _expand_includes((PACKAGE_ROOT / rel).read_text(), (*seen, rel))

    return INCLUDE_RE.sub(replace, text)


def header_problems(text: str, name: str) -> list[str]:
    head = text.split("\n\n", 1)[0]
    problems = [f"header lacks {h!r}" for h in REQUIRED_HEADER if h not in head]
    if not head.startswith(f"-- {name}.lua:"):
        problems.append(f"header must open with '-- {name}.lua: <purpose>'")
    return problems


def load_source(path: Path) -> ScriptSource:
    raw = path.read_text()
    problems = header_problems(raw, path.stem)
    if problems:
        raise ValueError(f"{path}: {'; '.join(problems)}")
    head = raw.split("\n\n", 1)[0]
    n_keys = len(KEY_LINE_RE.findall(head))
    return ScriptSource(path.stem, path, _expand_includes(raw), n_keys)


def lua_auto_convert(catalogue: Catalogue) -> str:
    """B7 as a Lua table: unit -> {from_unit, below, attempts, num, den} (n from_unit buy n*num//den)."""
    rows = []
    for unit, rule in sorted(catalogue.auto_convert.items()):
        attempts = ", ".join(str(a) for a in rule.attempts)
        num, den = rule.units_per_from
        rows.append(
            f"  [{_lua_str(unit)}] = {{from_unit = {_lua_str(rule.from_unit)}, below = {rule.below}, "
            f"attempts = {{{attempts}}}, num = {num}, den = {den}}},"
        )
    return "local AUTO_CONVERT = {\n" + "\n".join(rows) + "\n}"


def _lua_str(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_]+", value):
        raise ValueError(f"catalogue name {value!r} cannot be written into Lua")
    return f"'{value}'"


def with_catalogue(text: str, catalogue: Catalogue) -> str:
    """Replace each ``--- @catalogue <section>`` line by that section's figures as Lua."""
    builders = {"auto_convert": lua_auto_convert}

    def replace(m: re.Match[str]) -> str:
        build = builders.get(m.group(1))
        if build is None:
            raise ValueError(f"unknown catalogue section {m.group(1)!r} in a Lua script")
        return build(catalogue)

    return CATALOGUE_RE.sub(replace, text)


@functools.cache
def _packaged_catalogue() -> Catalogue:
    from taskgate.catalogue import Catalogue  # late: the catalogue is a higher layer than the store

    return Catalogue.load()


class Scripts:
    """All scripts registered on one Redis client (EVALSHA with a NOSCRIPT fallback), with the
    figures of ``catalogue`` (default: the packaged one) compiled in."""

    def __init__(self, redis: Redis, catalogue: Catalogue | None = None) -> None:
        if catalogue is None:
            catalogue = _packaged_catalogue()
        self.redis = redis
        self.sources: dict[str, ScriptSource] = {}
        self._scripts: dict[str, AsyncScript] = {}
        for path in script_paths():
            src = load_source(path)
            if src.name in self.sources:
                raise ValueError(f"two scripts named {src.name}")
            src = dataclasses.replace(src, text=with_catalogue(src.text, catalogue))  # the text that runs
            self.sources[src.name] = src
            self._scripts[src.name] = redis.register_script(src.text)

    async def call(self, name: str, keys: list[str], args: list[Any]) -> list[Any]:
        """Run a script; raise the mapped exception for a negative status."""
        src = self.sources[name]
        if len(keys) != src.n_keys:
            raise ValueError(f"{name} takes {src.n_keys} keys, got {len(keys)}")
        result = await self._scripts[name](keys=keys, args=args)
        if not isinstance(result, list):
            result = [result]
        status = int(result[0])
        if status < 0:
            raise error_from_script(name, status, [_text(x) for x in result[1:]])
        return [_text(x) for x in result]


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value
