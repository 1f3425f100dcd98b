"""Plain arq baselines for the pipeline benchmark, tuned like taskgate's worker (JSON jobs, many
concurrent jobs, a short poll): a no-op job, and a job that makes the same two upstream calls a
taskgate attempt makes on a zero-latency simulator (submit, then poll until the job has ended)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from arq.connections import RedisSettings, create_pool
from arq.worker import Worker

from taskgate.worker.arq_worker import job_deserializer, job_serializer

MAX_JOBS = 500
POLL_DELAY_S = 0.005
SIM_KEY = "bench-arq"


async def noop_job(ctx: dict[str, Any], i: int) -> None:
    return None


async def http_job(ctx: dict[str, Any], i: int) -> str:
    http: aiohttp.ClientSession = ctx["http"]
    base, headers = ctx["sim_url"], {"x-api-key": SIM_KEY}
    body = {
        "model": "midjourney",
        "task_type": "imagine",
        "mode": "fast",
        "input": {"prompt": "bench [sim duration=0]"},
        "idempotency_key": f"{ctx['run']}-{i}",
    }
    async with http.post(f"{base}/v1/jobs", json=body, headers=headers) as resp:
        job_id = (await resp.json())["id"]
    while True:
        async with http.get(f"{base}/v1/jobs/{job_id}", headers=headers) as resp:
            status = (await resp.json())["status"]
        if status in ("completed", "failed"):
            return str(status)
        await asyncio.sleep(POLL_DELAY_S)


async def _startup(ctx: dict[str, Any]) -> None:
    ctx["http"] = aiohttp.ClientSession()


async def _shutdown(ctx: dict[str, Any]) -> None:
    await ctx["http"].close()


async def enqueue(redis_url: str, queue: str, kind: str, n: int) -> None:
    pool = await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
        default_queue_name=queue,
    )
    name = f"{kind}_job"
    for start in range(0, n, 500):
        await asyncio.gather(
            *(pool.enqueue_job(name, i, _job_id=f"{queue}-{i}") for i in range(start, min(n, start + 500)))
        )
    await pool.aclose()


async def build_arq_worker(args: dict[str, Any]) -> Worker:
    """A burst worker for ``args`` {redis_url, queue, kind: noop|http, sim_url, run}."""
    http = args["kind"] == "http"
    pool = await create_pool(
        RedisSettings.from_dsn(args["redis_url"]),
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
        default_queue_name=args["queue"],
    )
    return Worker(
        functions=[http_job if http else noop_job],
        queue_name=args["queue"],
        redis_pool=pool,
        burst=True,
        max_jobs=MAX_JOBS,
        poll_delay=POLL_DELAY_S,
        keep_result=0,
        handle_signals=False,
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
        ctx={"sim_url": args.get("sim_url", ""), "run": args.get("run", "")},
        on_startup=_startup if http else None,
        on_shutdown=_shutdown if http else None,
    )
