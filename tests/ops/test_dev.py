"""`taskgate dev` starts and stops cleanly with a reachable Redis and without one (then it runs a
private redis-server and removes it on exit)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.redis_server import free_port


def start_dev(env_redis_url: str) -> tuple[subprocess.Popen[bytes], int]:
    port, sim_port = free_port(), free_port()
    env = {**os.environ, "TASKGATE_REDIS_URL": env_redis_url, "TASKGATE_KEY_PREFIX": f"dev{port}",
           "TASKGATE_LOG_PROFILE": "json"}
    proc = subprocess.Popen([sys.executable, "-m", "taskgate", "dev", "--port", str(port),
                             "--sim-port", str(sim_port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    return proc, port


def wait_healthy(proc: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("taskgate dev never became ready")


def stop(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, err.decode()


def private_redis_dirs() -> set[Path]:
    import tempfile

    return set(Path(tempfile.gettempdir()).glob("taskgate-dev-redis-*"))


@pytest.mark.slow
def test_dev_with_reachable_redis(redis_url):
    proc, port = start_dev(redis_url)
    wait_healthy(proc, port)
    code, err = stop(proc)
    assert code == 0, err
    assert "private redis-server" not in err


@pytest.mark.slow
def test_dev_without_redis_starts_and_removes_a_private_one():
    before = private_redis_dirs()
    proc, port = start_dev(f"redis://127.0.0.1:{free_port()}/0")
    wait_healthy(proc, port)
    code, err = stop(proc)
    assert code == 0, err
    assert "started a private redis-server" in err
    assert private_redis_dirs() - before == set()
    url = [w for w in err.split() if w.startswith("redis://127.0.0.1:")][-1]
    private_port = int(url.rsplit(":", 1)[1].split("/")[0])
    import socket

    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", private_port), timeout=0.5):
        pass
