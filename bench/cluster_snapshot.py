"""Cost of one cluster snapshot (the Redis work behind the API's /metrics and the dashboard).

    PYTHONPATH=. .venv/bin/python bench/cluster_snapshot.py

Starts a throwaway redis-server, fills it (users, one flow per user, queued tasks, accounts) and
prints the time of a whole snapshot and of the longest single script call (the longest Redis is
held). Figures only; nothing is asserted."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from taskgate.metrics.cluster import CHUNK, read_cluster
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts
from tests.factories import enqueue, make_account, make_user
from tests.redis_server import RedisServer

CASES = ((10, 1000, 10), (1000, 10, 100), (100, 1000, 100), (10000, 1, 100))  # users, tasks each, accounts


async def case(url: str, users: int, tasks_per_user: int, accounts: int) -> None:
    r = Redis.from_url(url)
    keys, s = Keys(f"bench{users}x{tasks_per_user}"), Scripts(r)
    uids = [await make_user(r, s, keys, plan="developer", wallets={"mj_quota": 10**9}) for _ in range(users)]
    for _ in range(accounts):
        await make_account(s, keys, capacity=10)
    sem = asyncio.Semaphore(200)

    async def one(user: str) -> None:
        async with sem:
            await enqueue(s, keys, user, price=1)

    await asyncio.gather(*(one(u) for u in uids for _ in range(tasks_per_user)))
    await read_cluster(s, keys)
    n, t0 = 10, time.perf_counter()
    for _ in range(n):
        snap = await read_cluster(s, keys)
    whole = (time.perf_counter() - t0) / n * 1000
    flows = [f.decode() for f in await r.hkeys(keys.flow_meta())][:CHUNK]
    t0 = time.perf_counter()
    await s.call("count_pending", keys=[keys.flow_meta()], args=[keys.base, *flows])
    longest = (time.perf_counter() - t0) * 1000
    print(
        f"users={users} queued={users * tasks_per_user} flows={users} accounts={accounts}: "
        f"snapshot {whole:.1f} ms, longest call count_pending({len(flows)} flows) {longest:.1f} ms, "
        f"pending={sum(snap.pending.values())}"
    )
    await r.aclose()


async def main() -> None:
    server = RedisServer()
    server.start()
    try:
        for args in CASES:
            await case(server.url, *args)
    finally:
        server.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
