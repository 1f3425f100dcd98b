"""The processes of the multi-process benchmarks (``pipeline``, ``inflight``, ``api``).

``python -m taskgate.bench.roles <role> '<json args>'``, settings from ``TASKGATE_*``. Each role
talks to the benchmark over its pipes: it prints ``ready`` once connected, waits for a line ``go``
on stdin, runs, and prints its figures as JSON lines (stamped with ``time.time()`` so the
benchmark can line up several processes). The benchmark ends a role by killing it. Every role,
the arq baselines included, runs on the event loop the ``taskgate`` commands run on (uvloop when
installed), so a comparison measures the engines, not their loops."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from taskgate.settings import Settings

RoleMain = Callable[[Settings, dict[str, Any]], Coroutine[Any, Any, None]]


def emit(payload: dict[str, Any] | str) -> None:
    """One line to the benchmark on stdout."""
    line = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def wait_go() -> float:
    """Tell the benchmark we are ready; block until it says ``go``; return the wall-clock start."""
    emit("ready")
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    if line.strip() != "go":
        raise SystemExit(0)  # the benchmark went away
    return time.time()


async def scheduler(settings: Settings, args: dict[str, Any]) -> None:
    from taskgate.scheduler.runner import run_scheduler

    await wait_go()
    await run_scheduler(settings, asyncio.Event())


async def observer(settings: Settings, args: dict[str, Any]) -> None:
    """Counts from Redis, not per-task reads: terminal = total - queued in the flows - leased."""
    from taskgate.store.connection import create_redis

    redis = await create_redis(settings)
    flows, leases, total = list(args["flows"]), str(args["leases"]), int(args["total"])
    await wait_go()
    deadline = time.time() + float(args.get("timeout_s", 600))
    while True:
        pipe = redis.pipeline(transaction=False)
        for flow in flows:
            pipe.llen(flow)
        pipe.zcard(leases)
        counts = await pipe.execute()
        terminal = total - sum(int(c) for c in counts)
        if terminal >= total or time.time() > deadline:
            emit({"done_at": time.time(), "terminal": terminal})
            return
        await asyncio.sleep(0.01)


async def producer(settings: Settings, args: dict[str, Any]) -> None:
    """Creates ``total`` tasks for the given users through TaskService (the API's own path)."""
    from taskgate.models import CreateTaskRequest
    from taskgate.services import build_services

    services = await build_services(settings)
    users = [await services.users.get(uid) for uid in args["users"]]
    request = CreateTaskRequest.model_validate(args["request"])
    total, sem = int(args["total"]), asyncio.Semaphore(int(args.get("concurrency", 64)))

    async def one(i: int) -> None:
        async with sem:
            await services.tasks.create(users[i % len(users)], request)

    started = await wait_go()
    await asyncio.gather(*(one(i) for i in range(total)))
    emit({"created": total, "started_at": started, "ended_at": time.time()})


async def worker(settings: Settings, args: dict[str, Any]) -> None:
    from taskgate.bench.worker_probe import run_probed_worker

    await run_probed_worker(settings, float(args.get("sample_s", 1.0)), wait_go)


async def arq_drain(settings: Settings, args: dict[str, Any]) -> None:
    from taskgate.bench.arq_jobs import build_arq_worker

    worker_ = await build_arq_worker(args)
    started = await wait_go()
    await worker_.async_run()
    emit({"started_at": started, "ended_at": time.time(), "cpu_s": time.process_time()})
    await worker_.close()


async def loadgen(settings: Settings, args: dict[str, Any]) -> None:
    from taskgate.bench.loadgen import drive

    await wait_go()
    emit(await drive(args, lambda: emit({"phase": "create_done"})))


ROLES: dict[str, RoleMain] = {
    "scheduler": scheduler,
    "observer": observer,
    "producer": producer,
    "worker": worker,
    "arq": arq_drain,
    "loadgen": loadgen,
}


def main(argv: list[str]) -> int:
    from taskgate.logging import configure_logging
    from taskgate.process import fast_loop_factory

    settings = Settings()
    configure_logging("json", settings.log_level)
    role = ROLES[argv[0]]
    args = json.loads(argv[1]) if len(argv) > 1 else {}
    with asyncio.Runner(loop_factory=fast_loop_factory()) as runner:  # the loop the commands run on
        runner.run(role(settings, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
