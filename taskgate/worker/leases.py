"""Batched lease renewal: the slot leases of every attempt a worker runs are renewed together.

Each attempt registers its lease with the worker's ``LeaseKeeper``; once per renewal period one
``renew_leases`` script call (per ``RENEW_BATCH`` attempts) extends them all, each fenced by its
attempt number. A renewal that finds the attempt no longer current marks
its lease lost and stops renewing it (the attempt's own writes are fenced off anyway); a cancel the
user asked for is passed to the attempt. Both are also reported to ``on_lost`` / ``on_cancel`` (the
watcher's hooks). The renewal loop runs only while a lease is held.

A lease is also renewed as soon as it is held (the job's pickup), batched with the other new ones:
its arq job may have waited in the queue for most of the lease dispatch booked (or the reaper
extended while no worker was free), and one renewal period later could be too late."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from taskgate.settings import Settings
from taskgate.store import script_api
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts

log = structlog.get_logger(__name__)

RENEW_BATCH = 2000  # attempts per script call: bounds how long one call holds Redis
PICKUP_COALESCE_S = 0.02  # new leases renewed together after this long: one call per burst of starts


@dataclass(slots=True)
class HeldLease:
    task_id: str
    attempt: int
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    lost: bool = False


@dataclass(slots=True)
class LeaseStats:
    calls: int = 0  # renew_leases script calls
    renewed: int = 0  # task leases extended
    pickup_calls: int = 0  # renew_leases calls for leases just held (not in calls / renewed)
    picked: int = 0  # leases renewed at pickup


class LeaseKeeper:
    def __init__(self, scripts: Scripts, keys: Keys, settings: Settings) -> None:
        self.scripts, self.keys, self.settings = scripts, keys, settings
        self.held: dict[str, HeldLease] = {}
        self.stats = LeaseStats()
        self._loop: asyncio.Task[None] | None = None
        self._fresh: list[HeldLease] = []  # held since the last pickup renewal
        self._pickup: asyncio.Task[None] | None = None
        self.on_lost: Callable[[HeldLease], None] | None = None
        self.on_cancel: Callable[[HeldLease], None] | None = None

    def hold(self, task_id: str, attempt: int) -> HeldLease:
        """Renew this attempt's lease from now on, until ``release``."""
        lease = HeldLease(task_id, attempt)
        self.held[task_id] = lease
        if self._loop is None or self._loop.done():
            self._loop = asyncio.create_task(self._run())
        self._fresh.append(lease)
        if self._pickup is None or self._pickup.done():
            self._pickup = asyncio.create_task(self._renew_picked())
        return lease

    def release(self, lease: HeldLease) -> None:
        if self.held.get(lease.task_id) is lease:
            del self.held[lease.task_id]
        if not self.held and self._loop is not None:
            self._loop.cancel()  # nothing to renew: no timer left behind
            self._loop = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.renew_interval_s)
            try:
                await self.renew_all()
            except Exception:  # Redis away: the next period tries again; leases outlast a few misses
                log.exception("lease_renew_failed", held=len(self.held))

    async def _renew_picked(self) -> None:
        await asyncio.sleep(PICKUP_COALESCE_S)
        while self._fresh:
            batch = [x for x in self._fresh[:RENEW_BATCH] if self.held.get(x.task_id) is x]
            del self._fresh[:RENEW_BATCH]
            try:
                if batch:
                    self.stats.picked += await self._renew(batch, pickup=True)
                    self.stats.pickup_calls += 1
            except Exception:  # Redis away: the periodic renewal tries again
                log.exception("lease_pickup_renew_failed", held=len(batch))

    async def renew_all(self) -> None:
        """One renewal round over every held lease."""
        leases = list(self.held.values())
        for start in range(0, len(leases), RENEW_BATCH):
            await self._renew(leases[start : start + RENEW_BATCH])

    async def _renew(self, batch: list[HeldLease], *, pickup: bool = False) -> int:
        """Renew ``batch``; the number renewed."""
        renewal = await script_api.renew_leases(
            self.scripts,
            self.keys,
            lease_ms=self.settings.lease_ms,
            leases=[(lease.task_id, lease.attempt) for lease in batch],
        )
        lost, cancel = renewal.lost, renewal.cancel
        if not pickup:
            self.stats.calls += 1
            self.stats.renewed += len(batch) - len(lost)
        by_id = {lease.task_id: lease for lease in batch}
        for task_id in lost:
            lease = by_id[task_id]
            lease.lost = True
            self.release(lease)
            log.warning("lease_lost", task_id=task_id, attempt=lease.attempt)
            if self.on_lost is not None:
                self.on_lost(lease)
        for task_id in cancel:
            by_id[task_id].cancelled.set()
            if self.on_cancel is not None:
                self.on_cancel(by_id[task_id])
        return len(batch) - len(lost)
