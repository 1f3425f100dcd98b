"""Every key a task's life touches hashes to the deployment's slot (docs/architecture.md#keyspace):
taskgate's keys and arq's job, in-progress, retry and result keys alike, in scripts (MONITOR shows
the commands Lua runs) and in arq's transactions. A key outside the hash tag (arq's own global
"arq:abort" set, or a job id without the tag) would make these commands cross-slot in a Cluster."""

from __future__ import annotations

import asyncio
import contextlib
import re

from redis.asyncio import Redis
from redis.crc import key_slot

ARG = re.compile(r'"(.*?)(?<!\\)"')
KEY_LIKE = re.compile(r"^(arq:[\w-]+(:.+)?|\{[^\"}]+\}(:.*)?)$")  # not a bare prefix like "arq:job:"


async def _record(redis_url: str, seen: list[list[str]], ready: asyncio.Event) -> None:
    """Append every command Redis executes to ``seen`` until cancelled (never cancelled mid-test)."""
    client = Redis.from_url(redis_url)
    try:
        async with client.monitor() as monitor:
            ready.set()
            while True:
                info = await monitor.connection.read_response()
                line = info.decode() if isinstance(info, bytes) else str(info)
                seen.append(ARG.findall(line))
    finally:
        await client.aclose()


async def test_a_task_life_stays_in_one_slot(system, redis_url):
    keys = system.services.keys
    seen: list[list[str]] = []
    ready = asyncio.Event()
    recorder = asyncio.create_task(_record(redis_url, seen, ready))
    await asyncio.wait_for(ready.wait(), 10)
    _, key = await system.user("developer", wallets={"mj_quota": 100})
    await system.shared_account(capacity=2)
    _, body = await system.imagine(key, "one slot [sim duration=0.1]")
    task = await system.wait_final(key, body["data"]["task_id"])
    in_progress = "arq:in-progress:" + keys.arq_job_id(task["task_id"], 1)
    for _ in range(1000):  # until MONITOR has shown arq's finish transaction (it deletes in-progress)
        if any(args and args[0].upper() == "DEL" and in_progress in args for args in seen):
            break
        await asyncio.sleep(0.01)
    recorder.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionError):
        await recorder
    assert task["status"] == "completed"
    job_id = keys.arq_job_id(task["task_id"], 1)
    commands = [args for args in seen if args]
    assert any(job_id in args for args in commands), "the worker never touched the attempt's job"
    slot = key_slot(keys.base.encode())
    outside = {
        arg
        for args in commands
        for arg in args[1:]
        if KEY_LIKE.match(arg)
        and (keys.base in arg or arg.startswith("arq:"))
        and key_slot(arg.encode()) != slot
    }
    assert not outside, f"keys outside the {keys.base} slot: {sorted(outside)}"
