"""Under load a dispatch round starts at most every ``dispatch_min_interval_ms``: wake-ups that come
sooner wait for the rest of it, and the tasks they announce are booked together in one call."""

from __future__ import annotations

import asyncio

from taskgate.scheduler.runner import run_scheduler
from tests.factories import enqueue, make_account, make_user, task_fields
from tests.scheduler.test_backpressure import until

INTERVAL_MS = 400


async def test_wake_ups_within_the_interval_are_booked_in_one_round(redis, scripts, keys, settings):
    user = await make_user(redis, scripts, keys, plan="premium", cap=1000, wallets={"mj_quota": 10_000})
    await make_account(scripts, keys, capacity=1000)
    stop = asyncio.Event()
    scheduler = asyncio.create_task(
        run_scheduler(settings.model_copy(update={"dispatch_min_interval_ms": INTERVAL_MS}), stop)
    )
    try:

        async def dispatched(task_id: str) -> bool:
            return (await task_fields(redis, keys, task_id)).get("status") == "processing"

        first = await enqueue(scripts, keys, user, price=1)
        await until(lambda: dispatched(first), 10)
        burst = [await enqueue(scripts, keys, user, price=1) for _ in range(5)]  # five wake-ups
        for task_id in burst:
            await until(lambda task_id=task_id: dispatched(task_id), 10)
        first_ms = int((await task_fields(redis, keys, first))["dispatched_ms"])
        burst_ms = {int((await task_fields(redis, keys, t))["dispatched_ms"]) for t in burst}
        assert len(burst_ms) == 1  # one dispatch call booked all five
        assert burst_ms.pop() - first_ms >= INTERVAL_MS - 20  # and it waited for the interval
    finally:
        stop.set()
        await scheduler
