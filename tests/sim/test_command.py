from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

import aiohttp
import pytest

from taskgate.settings import Settings
from taskgate.sim import command
from taskgate.sim.command import serve_sim
from taskgate.sim.server import start_sim
from tests.redis_server import free_port

RUN_COMMAND = """
import argparse, sys
from taskgate.sim import command
parser = argparse.ArgumentParser()
command.register(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_register_adds_upstream_sim_with_host_and_port() -> None:
    args = _parser().parse_args(["upstream-sim", "--host", "127.0.0.2", "--port", "9123"])
    assert (args.host, args.port, args.func) == ("127.0.0.2", 9123, command._run)
    defaults = _parser().parse_args(["upstream-sim"])
    assert defaults.host is None and defaults.port is None  # filled from Settings at run time


async def test_serve_sim_runs_until_stopped() -> None:
    stop = asyncio.Event()
    runner, port = await start_sim(Settings(), "127.0.0.1", 0)
    await runner.cleanup()  # start_sim binds the port it reports
    assert port > 0
    serving = asyncio.create_task(serve_sim(Settings(), stop, host="127.0.0.1", port=port))
    async with aiohttp.ClientSession() as http:
        await _wait_healthy(http, port)
        stop.set()
        await serving
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(f"http://127.0.0.1:{port}/v1/health", headers={"x-api-key": "k"})


async def test_command_serves_and_exits_zero_on_sigterm() -> None:
    pytest.importorskip("taskgate.logging")  # run_role configures logging through it
    port = free_port()
    env = {**os.environ, "TASKGATE_SIM_SEED": "3", "TASKGATE_LOG_PROFILE": "json"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RUN_COMMAND,
        "upstream-sim",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as http:
            await _wait_healthy(http, port)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _wait_healthy(http: aiohttp.ClientSession, port: int) -> None:
    for _ in range(300):
        try:
            async with http.get(f"http://127.0.0.1:{port}/v1/health", headers={"x-api-key": "k"}) as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("the simulator never answered")
