"""``wrk`` (a native HTTP load generator) as the load of ``taskgate bench api``: a Python load
generator on the same small machine may itself be what limits the rate, wrk much less so.

One wrk thread per user, each with its own API key and ``connections`` connections: a create
phase (``POST /api/v1/task``), then a read phase (``GET /api/v1/task/{id}`` of random tasks the
thread's user created). Statuses are counted per response by the Lua script; the figures come
back as one JSON line that ``done()`` prints."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

RESULT_MARK = "TASKGATE_WRK "

# Shared by both phases: one API key (and ids file) per thread, statuses counted per response,
# the summary printed as one JSON line (wrk's latency figures are in microseconds).
_COMMON_LUA = """
local threads = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("api_key", KEYS[counter])
  thread:set("ids_file", IDS[counter] or "")
  table.insert(threads, thread)
end
statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local counts = {}
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses")) do counts[code] = (counts[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(counts) do table.insert(parts, string.format('"%d": %d', code, n)) end
  local e = summary.errors
  io.write(string.format(
    'RESULT_MARK{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"socket_errors": %d, "statuses": {%s}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, table.concat(parts, ", ")))
end
"""

_CREATE_LUA = """
function init(args)
  headers = {["x-api-key"] = api_key, ["content-type"] = "application/json"}
end
function request()
  return wrk.format("POST", "/api/v1/task", headers, BODY)
end
"""

_READ_LUA = """
function init(args)
  headers = {["x-api-key"] = api_key}
  ids = {}
  for line in io.lines(ids_file) do table.insert(ids, line) end
end
function request()
  return wrk.format("GET", "/api/v1/task/" .. ids[math.random(#ids)], headers)
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua_list(values: list[str]) -> str:
    return "{" + ", ".join(json.dumps(v) for v in values) + "}"


def script(phase: str, keys: list[str], body: dict[str, Any], ids_files: list[str]) -> str:
    """The Lua script of one phase (``create`` or ``read``) for one thread per key."""
    head = f"KEYS = {_lua_list(keys)}\nIDS = {_lua_list(ids_files)}\nBODY = {json.dumps(json.dumps(body))}\n"
    common = _COMMON_LUA.replace("RESULT_MARK", RESULT_MARK)
    return head + common + (_CREATE_LUA if phase == "create" else _READ_LUA)


async def run_phase(
    url: str, phase: str, keys: list[str], connections: int, seconds: float, **kw: Any
) -> dict[str, Any]:
    """One wrk run; the phase figures in the shape of ``loadgen._phase``. ``kw``: ``body`` (create),
    ``ids`` (read: per key, the task ids that key may read)."""
    with tempfile.TemporaryDirectory(prefix="taskgate-wrk-") as tmp:
        ids_files = []
        for i, ids in enumerate(kw.get("ids", [])):
            path = Path(tmp) / f"ids-{i}.txt"
            path.write_text("\n".join(ids) + "\n")
            ids_files.append(str(path))
        lua = Path(tmp) / f"{phase}.lua"
        lua.write_text(script(phase, keys, kw.get("body", {}), ids_files))
        threads = len(keys)
        argv = ["wrk", "-t", str(threads), "-c", str(threads * connections)]
        argv += ["-d", f"{max(1, math.ceil(seconds))}s", "--timeout", "10s", "-s", str(lua), url]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
    return parse_output(out.decode(), err.decode())


def parse_output(out: str, err: str = "") -> dict[str, Any]:
    for line in out.splitlines():
        if line.startswith(RESULT_MARK):
            raw = json.loads(line[len(RESULT_MARK) :])
            return {
                "requests": raw["requests"],
                "wall_s": round(raw["duration_us"] / 1e6, 3),
                "statuses": {str(k): v for k, v in raw["statuses"].items()},
                "latency_ms": {"p50": raw["p50_us"] / 1000, "p99": raw["p99_us"] / 1000},
                "socket_errors": raw["socket_errors"],
            }
    raise RuntimeError(f"wrk printed no result: {(out + err).strip()[-500:]!r}")
