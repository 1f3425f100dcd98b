"""A Redis master, a replica and three Sentinels as real processes on free loopback ports, for the
failover tests and the ``failover_redis`` chaos scenario.

Nodes keep AOF (appendfsync always) in their own dirs; Sentinels use short timings (down after
1 s) so a failover completes in a few seconds. ``kill_master`` SIGKILLs the current master and
waits until the Sentinels promoted the replica; ``restart`` brings a killed node back as a replica
of the new master (its own, possibly divergent, data is replaced by a full sync)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from taskgate.bench.chaos_cluster import Proc, stop_all
from taskgate.store.redis_launcher import free_port, redis_argv

SERVICE = "tgmaster"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 4000
READY_TIMEOUT_S = 30.0


class SentinelSet:
    def __init__(
        self,
        *,
        down_after_ms: int = DOWN_AFTER_MS,
        failover_timeout_ms: int = FAILOVER_TIMEOUT_MS,
        keep_dir: bool = False,
    ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="taskgate-sentinel-"))
        self.binary = shutil.which("redis-server") or "redis-server"
        self.node_ports = [free_port() for _ in range(2)]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.down_after_ms, self.failover_timeout_ms = down_after_ms, failover_timeout_ms
        self.keep_dir = keep_dir
        self.nodes = [self._node(i, replica_of=None if i == 0 else self.node_ports[0]) for i in range(2)]
        self.sentinels = [self._sentinel(i) for i in range(3)]
        self.failovers = 0

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def node_url(self, index: int) -> str:
        return f"redis://127.0.0.1:{self.node_ports[index]}/0"

    def _node(self, index: int, replica_of: int | None) -> Proc:
        node_dir = self.dir / f"node{index}"
        node_dir.mkdir(exist_ok=True)
        port = self.node_ports[index]
        argv = redis_argv(
            self.binary,
            port,
            node_dir,
            appendonly=True,
            logfile=False,
            maxclients=2000,
            replica_of=replica_of,
        )
        return Proc(f"node{index}", argv, dict(os.environ), node_dir)

    def _sentinel(self, index: int) -> Proc:
        port = self.sentinel_ports[index]
        conf = self.dir / f"sentinel{index}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {self.dir}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.node_ports[0]} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
            f"sentinel failover-timeout {SERVICE} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        return Proc(f"sentinel{index}", [self.binary, str(conf), "--sentinel"], dict(os.environ), self.dir)

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.nodes[0].start()
        _wait(lambda: _role(self.node_ports[0]) == "master", "the master did not start")
        self.nodes[1].start()
        _wait(lambda: self._replica_synced(1), "the replica did not sync")
        for s in self.sentinels:
            s.start()
        _wait(self._sentinels_ready, "the sentinels did not discover each other and the replica")

    def stop(self) -> None:
        stop_all(self.sentinels)  # first, so they do not fail over while the nodes stop
        stop_all(self.nodes)
        if not self.keep_dir and not os.environ.get("TASKGATE_CHAOS_KEEP_LOGS"):
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- faults ------------------------------------------------------------------------------------
    def master_index(self) -> int:
        port = self.master_port()
        return self.node_ports.index(port)

    def master_port(self) -> int:
        for port in self.sentinel_ports:
            try:
                with Redis(port=port, socket_timeout=1) as s:
                    addr = s.execute_command("SENTINEL", "get-master-addr-by-name", SERVICE)
                    return int(addr[1])
            except (RedisError, OSError):
                continue
        raise RuntimeError("no sentinel answers")

    def kill_master(self, timeout_s: float = 30.0) -> int:
        """SIGKILL the master; wait until a replica is promoted. Returns the killed node's index."""
        index = self.master_index()
        self.nodes[index].kill()
        self._wait_promoted(index, timeout_s)
        return index

    def failover(self, timeout_s: float = 30.0) -> None:
        """A manual ``SENTINEL FAILOVER`` (the old master lives on and becomes a replica)."""
        index = self.master_index()
        with Redis(port=self.sentinel_ports[0], socket_timeout=2) as s:
            s.execute_command("SENTINEL", "FAILOVER", SERVICE)
        self._wait_promoted(index, timeout_s)

    def restart(self, index: int) -> None:
        """Bring a killed node back as a replica of the current master."""
        master = self.node_ports[self.master_index()]
        self.nodes[index] = self._node(index, replica_of=master)
        self.nodes[index].start()
        _wait(lambda: self._replica_synced(index), f"node{index} did not rejoin as a replica")

    def _wait_promoted(self, old: int, timeout_s: float) -> None:
        other = 1 - old

        def promoted() -> bool:
            return self.master_port() == self.node_ports[other] and _role(self.node_ports[other]) == "master"

        _wait(promoted, "the sentinels did not promote the replica", timeout_s)
        self.failovers += 1

    def _replica_synced(self, index: int) -> bool:
        try:
            with Redis(port=self.node_ports[index], socket_timeout=1) as r:
                info = r.info("replication")
                return bool(info.get("role") == "slave" and info.get("master_link_status") == "up")
        except (RedisError, OSError):
            return False

    def _sentinels_ready(self) -> bool:
        for port in self.sentinel_ports:
            try:
                with Redis(port=port, socket_timeout=1) as s:
                    if not s.execute_command("SENTINEL", "replicas", SERVICE):
                        return False
                    if len(s.execute_command("SENTINEL", "sentinels", SERVICE)) < 2:
                        return False
            except (RedisError, OSError):
                return False
        return True


def _role(port: int) -> str:
    try:
        with Redis(port=port, socket_timeout=1) as r:
            role = r.execute_command("ROLE")
            return role[0].decode() if isinstance(role[0], bytes) else str(role[0])
    except (RedisError, OSError):
        return "down"


def _wait(check: object, message: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(message)
