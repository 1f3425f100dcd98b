"""`taskgate ... | head`: when the reader of stdout has gone, the command ends quietly (no
traceback on stderr), as other command-line tools do."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.ops.test_newcomer import TASKGATE


def run_into_closed_pipe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has left before the command writes anything
    try:
        return subprocess.run(
            [*TASKGATE, *args], stdout=write_end, stderr=subprocess.PIPE, text=True, env=env, timeout=120
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", [("--help",), ("admin", "users", "create", "--plan", "free", "--json")])
def test_a_closed_stdout_ends_without_a_traceback(args: tuple[str, ...], redis_url: str, prefix: str) -> None:
    env = {**os.environ, "TASKGATE_REDIS_URL": redis_url, "TASKGATE_KEY_PREFIX": prefix}
    done = run_into_closed_pipe(*args, env=env)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode in (0, 1)  # argparse swallows the error of --help itself


def test_an_open_stdout_still_gets_everything() -> None:
    done = subprocess.run([*TASKGATE, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "usage: taskgate" in done.stdout, (done.stdout, sys.executable)
