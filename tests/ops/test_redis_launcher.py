"""The one Redis launcher (``taskgate.store.redis_launcher``): throwaway servers, restarts on the
same port and data dir, and the free-port helper every caller uses."""

from __future__ import annotations

import os
import signal
import socket

from redis import Redis

from taskgate.store.connection import redis_answers
from taskgate.store.redis_launcher import RedisProcess, ThrowawayRedis, find_redis_server, free_port


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is not alive
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


async def test_throwaway_redis_answers_and_leaves_nothing_behind() -> None:
    async with ThrowawayRedis() as server:
        assert await redis_answers(server.url)
        assert server.server is not None
        pid, data_dir = server.server.pid, server.server.dir
        assert pid is not None and data_dir.is_dir()
    assert not _pid_alive(pid)
    assert not data_dir.exists()
    assert not await redis_answers(server.url, timeout_s=0.3)


def test_a_killed_aof_server_restarts_on_the_same_port_with_its_data() -> None:
    server = RedisProcess(find_redis_server("apt-get install redis-server"), appendonly=True)
    try:
        server.start()
        with Redis.from_url(server.url) as r:
            r.set("k", "v")
        server.signal(signal.SIGSTOP)  # stop() must still end a stopped server
        server.kill()
        assert not server.running
        server.start()
        with Redis.from_url(server.url) as r:
            assert r.get("k") == b"v"
    finally:
        server.cleanup()
    assert not server.running and not server.dir.exists()


def test_free_port_prefers_the_wanted_port_and_falls_back_when_taken() -> None:
    wanted = free_port()
    assert free_port(wanted) == wanted
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", wanted))
        taken.listen()
        other = free_port(wanted)
    assert other != wanted and other > 0
