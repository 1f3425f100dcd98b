"""A throwaway ``redis-server`` on a free loopback port, for tests and the chaos suite: a thin
fixture helper over ``taskgate.store.redis_launcher``.

It runs in its own temporary directory, so tests may kill it (SIGKILL, SIGSTOP) and restart it
with the same data dir, which is how AOF recovery is tested."""

from __future__ import annotations

from taskgate.store.redis_launcher import RedisProcess, find_redis_server, free_port

__all__ = ["RedisServer", "free_port"]


class RedisServer(RedisProcess):
    def __init__(self, *, appendonly: bool = False, port: int | None = None) -> None:
        binary = find_redis_server("run `make test` (it installs it) or apt-get install redis-server")
        super().__init__(binary, port=port, appendonly=appendonly, maxclients=2000)
