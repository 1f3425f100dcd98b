"""Registry of the Lua scripts: every ``<package>/lua/<verb_noun>.lua`` file, loaded once.

Each file opens with a header (``-- <name>.lua: purpose``, one ``-- KEYS[i] name`` line per key,
one ``-- ARGV[i] name`` line per argument, ``-- Returns:`` and ``-- Errors:``). A script taking a
list ends with one variadic line ``-- ARGV[i..] name`` (any number of further arguments, zero
included). Shared Lua fragments live in ``lua/lib/`` folders and are pulled in by a line
``--- @include "<package>/lua/lib/<name>.lua"``. Scripts return a table whose first item is a
status: ``>= 0`` success, ``< 0`` a ``ScriptErrorCode``; ``Scripts.call`` raises the mapped
exception for the latter (a not-found reply ``{-1, entity, id}`` names its entity).

``Scripts.call`` is the low-level primitive (KEYS and ARGV counts checked against the header,
retries, WAIT, error mapping). Application code calls the typed layer ``store/script_api/``
instead: one function per script with named arguments and a typed result.

Rules whose figures are catalogue data reach Lua through a line ``--- @catalogue auto_convert``: when
the scripts load, it becomes ``local AUTO_CONVERT = {...}`` built from the catalogue the process runs
with (B7, docs/rules.md#b7), so the TOML is the only place those figures are written.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from taskgate.errors import RedisUnavailable, error_from_script
from taskgate.settings import Settings
from taskgate.store.batching import ScriptBatcher
from taskgate.store.connection import FAILOVER_REPLIES, is_failover_error

if TYPE_CHECKING:
    from taskgate.catalogue.spec import Catalogue

log = structlog.get_logger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
INCLUDE_RE = re.compile(r'^--- @include "([^"]+)"\s*$', re.MULTILINE)
KEY_LINE_RE = re.compile(r"^-- KEYS\[(\d+)\]", re.MULTILINE)
ARG_LINE_RE = re.compile(r"^-- ARGV\[(\d+)(\.\.)?\]\s+(\w+)", re.MULTILINE)
REQUIRED_HEADER = ("-- KEYS[", "-- ARGV[", "-- Returns:", "-- Errors:")
CATALOGUE_RE = re.compile(r"^--- @catalogue (\w+)\s*$", re.MULTILINE)
RETRY_BACKOFF_S = (0.05, 1.0)  # first and longest pause between tries of one call
# Scripts that are safe to run again after an unknown outcome (the connection dropped after the
# call was sent): each is fenced by attempt, keyed by task/delivery id, or an upsert. The others
# (adjust_wallet: a top-up; record_incorrect, report_account: counters; claim_jobs: run again, it
# would find its own claims and skip the jobs) are retried only when Redis certainly did not run
# them (refused connection, READONLY / MASTERDOWN reply).
IDEMPOTENT = frozenset(
    {
        "create_task",
        "finish_task",
        "cancel_task",
        "record_progress",
        "dispatch_tasks",
        "reap_leases",
        "sweep_accounts",
        "claim_deliveries",
        "record_delivery",
        "put_account",
        "remove_account",
        "set_account_state",
        "read_task",
    }
)
# With TASKGATE_REDIS_MIN_REPLICAS_ACK > 0 these answer only after WAIT saw the replicas take them.
DURABLE = frozenset({"create_task", "finish_task", "cancel_task"})


@dataclass(frozen=True, slots=True)
class ScriptSource:
    name: str
    path: Path
    text: str
    n_keys: int
    arg_names: tuple[str, ...] = ()  # ARGV names in order; the variadic one last when ``variadic``
    variadic: bool = False

    def check_counts(self, n_keys: int, n_args: int) -> None:
        if n_keys != self.n_keys:
            raise ValueError(f"{self.name} takes {self.n_keys} keys, got {n_keys}")
        fixed = len(self.arg_names) - self.variadic
        if n_args < fixed or (n_args > fixed and not self.variadic):
            wanted = f"at least {fixed}" if self.variadic else str(fixed)
            raise ValueError(f"{self.name} takes {wanted} args, got {n_args}")


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
    names, variadic = parse_argv(head, path.stem)
    return ScriptSource(path.stem, path, _expand_includes(raw), n_keys, names, variadic)


def parse_argv(head: str, name: str) -> tuple[tuple[str, ...], bool]:
    """The ARGV names of a header, numbered 1..n with only the last one allowed to be ``[n..]``."""
    lines = ARG_LINE_RE.findall(head)
    for i, (index, dots, _) in enumerate(lines):
        if int(index) != i + 1 or (dots and i != len(lines) - 1):
            raise ValueError(f"{name}.lua: ARGV lines must be numbered 1..n, only the last variadic")
    return tuple(n for _, _, n in lines), bool(lines and lines[-1][1])


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
    from taskgate.catalogue.spec import Catalogue  # late: the catalogue is a higher layer than the store

    return Catalogue.load()


class Scripts:
    """All scripts registered on one Redis client (EVALSHA with a NOSCRIPT fallback), with the
    figures of ``catalogue`` (default: the packaged one) compiled in."""

    def __init__(
        self,
        redis: Redis,
        catalogue: Catalogue | None = None,
        *,
        retry_s: float = 15.0,
        min_replicas: int = 0,
        wait_timeout_ms: int = 1000,
    ) -> None:
        if catalogue is None:
            catalogue = _packaged_catalogue()
        self.redis = redis
        self.retry_s = retry_s
        self.sources: dict[str, ScriptSource] = {}
        self._scripts: dict[str, AsyncScript] = {}
        for path in script_paths():
            src = load_source(path)
            if src.name in self.sources:
                raise ValueError(f"two scripts named {src.name}")
            src = dataclasses.replace(src, text=with_catalogue(src.text, catalogue))  # the text that runs
            self.sources[src.name] = src
            self._scripts[src.name] = redis.register_script(src.text)
        self.batcher = ScriptBatcher(redis, min_replicas, wait_timeout_ms)

    @classmethod
    def for_settings(cls, redis: Redis, settings: Settings, catalogue: Catalogue | None = None) -> Scripts:
        return cls(
            redis,
            catalogue,
            retry_s=settings.redis_retry_s,
            min_replicas=settings.redis_min_replicas_ack,
            wait_timeout_ms=settings.redis_wait_timeout_ms,
        )

    async def call(self, name: str, keys: list[str], args: list[Any]) -> list[Any]:
        """Run a script; raise the mapped exception for a negative status.

        A dropped connection or a failover reply is retried with backoff for ``retry_s`` (the
        client re-discovers the master meanwhile), then ``RedisUnavailable``. A durable script
        answers only after WAIT confirmed ``min_replicas`` replicas, else ``NotDurable``."""
        self.sources[name].check_counts(len(keys), len(args))
        deadline = time.monotonic() + self.retry_s
        pause = RETRY_BACKOFF_S[0]
        while True:
            try:
                result = await self._run(name, keys, args)
                break
            except (RedisError, OSError) as exc:
                if not _may_retry(name, exc) or time.monotonic() + pause > deadline:
                    if is_failover_error(exc):
                        raise RedisUnavailable(exc.__class__.__name__) from exc
                    raise
                if pause == RETRY_BACKOFF_S[0]:  # one line per call, not one per try
                    log.warning("redis_call_retrying", script=name, error=exc.__class__.__name__)
                with contextlib.suppress(RedisError, OSError):
                    await self.redis.connection_pool.disconnect(inuse_connections=False)  # idle: reconnect
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_BACKOFF_S[1])
        status = int(result[0])
        if status < 0:
            raise error_from_script(name, status, [_text(x) for x in result[1:]])
        return [_text(x) for x in result]

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> list[Any]:
        """One script run, sent in the next batch (see ``ScriptBatcher``)."""
        result = await self.batcher.submit(self._scripts[name], keys, args, durable=name in DURABLE)
        return result if isinstance(result, list) else [result]


def _may_retry(name: str, exc: BaseException) -> bool:
    """Retry a failover error; after an unknown outcome only an idempotent script."""
    if not is_failover_error(exc):
        return False
    if name in IDEMPOTENT:
        return True
    refused = isinstance(exc, ResponseError) and str(exc).startswith(FAILOVER_REPLIES)
    return refused or (isinstance(exc, RedisConnectionError) and "connecting to" in str(exc))


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value
