"""The worker's end of upstream callbacks: one pub/sub subscription per worker process, routing
each verified callback (``<task_id>:<attempt>``) to the attempt waiting for it, if it runs here
(the watcher's wake-up for that attempt: a plain function call, no coroutine per attempt).

The subscription lives while an attempt waits for a callback, and an attempt registers before it
submits, so a callback cannot outrun it. A callback for an attempt this worker does not run (or
no longer runs) is ignored: it belongs to another worker or is stale."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog
from redis.asyncio import Redis

from taskgate.providers import callbacks
from taskgate.store.keys import Keys

log = structlog.get_logger(__name__)
RESUBSCRIBE_DELAY_S = 0.5
SUBSCRIBE_TIMEOUT_S = 2.0  # past this an attempt goes on without (the safety poll covers it)
# a read waits this long, then pings: below the socket timeout, which would drop an idle subscription
IDLE_READ_S = 5.0


class CallbackHub:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis, self.channel = redis, keys.upstream_callbacks()
        self.waiting: dict[str, Callable[[], None]] = {}
        self.received = 0
        self.subscriptions = 0  # subscribes so far: one, unless Redis went away
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def listen_for(self, task_id: str, attempt: int, on_wake: Callable[[], None]) -> None:
        """Call ``on_wake`` for each callback of this attempt; returns once the subscription is live."""
        self.waiting[callbacks.wake_message(task_id, attempt)] = on_wake
        if self._listener is None or self._listener.done():
            self._subscribed = asyncio.Event()
            self._listener = asyncio.create_task(self._listen())
        if not self._subscribed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), SUBSCRIBE_TIMEOUT_S)

    async def register(self, task_id: str, attempt: int) -> asyncio.Event:
        """An event a callback for this attempt sets; returns once the subscription is live."""
        event = asyncio.Event()
        await self.listen_for(task_id, attempt, event.set)
        return event

    def forget(self, task_id: str, attempt: int) -> None:
        self.waiting.pop(callbacks.wake_message(task_id, attempt), None)
        if not self.waiting and self._listener is not None:
            self._listener.cancel()  # nobody waits: drop the subscription
            self._listener = None

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.subscriptions += 1
                self._subscribed.set()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=IDLE_READ_S)
                    if message is None:
                        await pubsub.ping()  # a dead connection fails here: subscribe again
                    elif message.get("type") == "message":
                        self._route(message.get("data"))
            except Exception:  # Redis away: the safety poll covers the gap; subscribe again
                log.exception("callback_subscription_failed")
                await asyncio.sleep(RESUBSCRIBE_DELAY_S)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _route(self, data: object) -> None:
        key = data.decode() if isinstance(data, bytes) else str(data)
        on_wake = self.waiting.get(key)
        if on_wake is not None:
            self.received += 1
            on_wake()
