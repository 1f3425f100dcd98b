"""The watcher: every upstream job this worker waits for, held as data, not as a job or coroutine.

An arq job submits the attempt (or, for a resumed one, takes its stored upstream id) and hands it
here; the job's slot is free at once, so ``worker_max_jobs`` bounds submits in progress and
``worker_max_inflight`` bounds the attempts held. One loop keeps a heap of due times: an attempt is
due when its poll schedule says (worker/polling.py), when its upstream calls back (CallbackHub
calls ``wake``), or when the user cancels (the LeaseKeeper's renewal reports it). Due attempts are
stepped concurrently, at most ``worker_watch_concurrency`` at once and within the per-account poll
cap: one poll, progress recorded, and on an end one fenced ``finish_task`` (worker/settle.py).

Leases of held attempts are renewed by the LeaseKeeper in batches; an attempt whose lease is lost
is dropped (the reaper has requeued it; its next attempt resumes by the upstream id). On shutdown
``hand_back_all`` returns every held attempt with a shielded HANDBACK finish."""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from taskgate.errors import AlreadyFinal, StaleAttempt
from taskgate.providers.base import ErrorKind, ProviderError, UpstreamState, UpstreamStatus
from taskgate.tasks.service import TaskService
from taskgate.worker.leases import HeldLease, LeaseKeeper
from taskgate.worker.polling import Polling, PollSchedule
from taskgate.worker.settle import STALE, Attempt, Ended, Settler

log = structlog.get_logger(__name__)

TRANSIENT_POLL_ERRORS = 5  # consecutive poll failures before the attempt is given up
RETRY_DELAY_S = 1.0  # after an unexpected failure of a step (Redis away): try the step again
HAND_BACK_CONCURRENCY = 64


@dataclass(slots=True, eq=False)
class Watched:
    """One held attempt: what its next step needs, and why it is due."""

    run: Attempt
    lease: HeldLease
    schedule: PollSchedule | None = None  # None until the upstream id is known
    due_token: int = -1  # the heap entry that is current; older ones are skipped
    busy: bool = False  # a step is running
    woken: bool = False  # a callback came while busy: poll again at once
    cancel: bool = False  # the user asked to cancel
    gone: bool = False  # dropped: no further step
    failures: int = 0
    last_progress: int = -1
    slot_at: float = field(default=-1.0)  # the per-account poll slot reserved for the next poll

    @property
    def task_id(self) -> str:
        return self.run.task.task_id

    @property
    def attempt(self) -> int:
        return self.run.task.attempt


@dataclass(slots=True)
class WatchStats:
    polls: int = 0
    wakes: int = 0  # callbacks routed to a held attempt
    ended: int = 0  # attempts settled by the watcher


class Watcher:
    def __init__(
        self,
        tasks: TaskService,
        settler: Settler,
        polling: Polling,
        leases: LeaseKeeper,
        capacity: int,
        concurrency: int,
    ) -> None:
        self.tasks, self.settler, self.polling, self.leases = tasks, settler, polling, leases
        self.capacity, self.concurrency = capacity, max(1, concurrency)
        self.held: dict[str, Watched] = {}  # by task id: one attempt of a task per worker
        self.stats = WatchStats()
        self.on_ended: Callable[[str, int, Ended], None] | None = None  # metrics of a settled attempt
        self._heap: list[tuple[float, int, Watched]] = []
        self._tokens = itertools.count()
        self._steps: set[asyncio.Task[None]] = set()
        self._kick = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._loop: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self.closing = False
        leases.on_lost = self._lease_lost
        leases.on_cancel = self._lease_cancelled

    @property
    def inflight(self) -> int:
        return len(self.held)

    def room(self) -> int:
        """Attempts this watcher can still take (0 while closing)."""
        return 0 if self.closing else max(0, self.capacity - len(self.held))

    def admit(self, run: Attempt, lease: HeldLease) -> Watched | None:
        """Hold an attempt from before its submit (so a callback or cancel cannot outrun it);
        None when full. ``watch`` starts its polling, ``drop`` lets go of it."""
        if self.room() <= 0:
            return None
        w = Watched(run, lease)
        old = self.held.get(w.task_id)
        if old is not None:
            self.drop(old)  # an older attempt of this task: fenced off anyway
        self.held[w.task_id] = w
        self._empty.clear()
        return w

    async def expect_callback(self, w: Watched) -> str:
        """The callback URL to submit with ("" if none); its callbacks wake ``w``."""
        return await self.polling.expect_callback(
            w.run.access.provider, w.task_id, w.attempt, functools.partial(self.wake, w.task_id, w.attempt)
        )

    def watch(self, w: Watched, resumed: bool) -> None:
        """The upstream id is stored: poll by the schedule from now on."""
        t = w.run.task
        callback = self.polling.expects_callback(t.task_id, t.attempt)
        w.schedule = self.polling.schedule(w.run.access.provider, t.model, t.lane, callback=callback)
        first = 0.0 if (w.cancel or w.woken) else w.schedule.first_delay(resumed)
        w.woken = False
        self._push(w, asyncio.get_running_loop().time() + first)

    def drop(self, w: Watched) -> None:
        """Let go of an attempt: no more steps, lease no longer renewed, callbacks ignored."""
        if w.gone:
            return
        w.gone = True
        if self.held.get(w.task_id) is w:
            del self.held[w.task_id]
        self.leases.release(w.lease)
        self.polling.forget(w.task_id, w.attempt)
        if not self.held:
            self._empty.set()

    def wake(self, task_id: str, attempt: int) -> None:
        """A verified callback for this attempt: poll it now (one callback, one poll)."""
        w = self.held.get(task_id)
        if w is None or w.attempt != attempt or w.gone:
            return
        self.stats.wakes += 1
        if w.busy or w.schedule is None:
            w.woken = True
        else:
            self._push(w, asyncio.get_running_loop().time())

    async def idle(self) -> None:
        """Return once no attempt is held."""
        while self.held:
            await self._empty.wait()

    def _lease_cancelled(self, lease: HeldLease) -> None:
        w = self.held.get(lease.task_id)
        if w is None or w.lease is not lease or w.gone:
            return
        w.cancel = True
        if not w.busy and w.schedule is not None:
            self._push(w, asyncio.get_running_loop().time())

    def _lease_lost(self, lease: HeldLease) -> None:
        w = self.held.get(lease.task_id)
        if w is not None and w.lease is lease and not w.busy:
            self.drop(w)  # a busy one is dropped when its step sees the lease lost

    # --- the loop: due attempts out of the heap, stepped with bounded concurrency

    def _push(self, w: Watched, due: float) -> None:
        w.due_token = next(self._tokens)
        heapq.heappush(self._heap, (due, w.due_token, w))
        if self._loop is None or self._loop.done():
            self._loop = asyncio.create_task(self._run())
        if due < self._timer_at:
            self._arm(due)

    def _arm(self, due: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = due
        self._timer = asyncio.get_running_loop().call_at(due, self._kick.set)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.closing:
            await self._kick.wait()
            self._kick.clear()
            if self._timer is not None:
                self._timer.cancel()
            self._timer, self._timer_at = None, float("inf")
            self._start_due(loop.time())
            if self._heap and len(self._steps) < self.concurrency:
                self._arm(self._heap[0][0])

    def _start_due(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now and len(self._steps) < self.concurrency:
            _, token, w = heapq.heappop(heap)
            if w.gone or w.busy or token != w.due_token:
                continue  # superseded by a later wake-up, or dropped
            if not w.cancel:
                if w.slot_at < 0:
                    w.slot_at = self.polling.limiter.reserve(w.run.access.account_id, now)
                if w.slot_at > now:
                    self._push(w, w.slot_at)  # the account's poll cap: wait for its turn in the heap
                    continue
            w.busy, w.slot_at = True, -1.0
            step = asyncio.create_task(self._step(w))
            self._steps.add(step)
            step.add_done_callback(self._step_done)

    def _step_done(self, step: asyncio.Task[None]) -> None:
        self._steps.discard(step)
        if self._heap and not self.closing:
            self._kick.set()  # a free step: start the next due one

    async def _step(self, w: Watched) -> None:
        retry: float | None = None
        result: Ended | None
        try:
            result = await (self.settler.cancelled(w.run) if w.cancel else self._poll(w))
        except (StaleAttempt, AlreadyFinal):
            log.warning("attempt_fenced_off", task_id=w.task_id, attempt=w.attempt)
            result = STALE
        except Exception:  # Redis away or a bug: keep the attempt, try again; its lease covers it
            log.exception("watch_step_failed", task_id=w.task_id, attempt=w.attempt)
            result, retry = None, RETRY_DELAY_S
        w.busy = False
        if result is not None:
            self._end(w, result)
        else:
            self._after_step(w, retry)

    async def _poll(self, w: Watched) -> Ended | None:
        """One poll; the attempt's result once it has ended, else None."""
        run = w.run
        self.stats.polls += 1
        try:
            status = await run.provider.poll(run.access, run.task.upstream_id)
            w.failures = 0
        except ProviderError as exc:
            w.failures += 1
            if exc.kind != ErrorKind.TRANSIENT or w.failures >= TRANSIENT_POLL_ERRORS:
                return await self.settler.error(run, exc)
            status = UpstreamStatus(state=UpstreamState.RUNNING, progress=max(w.last_progress, 0))
        if status.state in (UpstreamState.COMPLETED, UpstreamState.FAILED):
            return await self.settler.ended(run, status)
        if status.progress > w.last_progress:
            w.last_progress = status.progress
            t = run.task
            if await self.tasks.record_progress(t.task_id, t.attempt, progress=status.progress, notify=True):
                return await self.settler.cancelled(run)
        return None

    def _after_step(self, w: Watched, delay: float | None) -> None:
        if w.gone or self.closing:
            return
        if w.lease.lost:
            self.drop(w)
            return
        now = asyncio.get_running_loop().time()
        if w.cancel or w.woken:
            delay, w.woken = 0.0, False
        elif delay is None and w.schedule is not None:
            delay = w.schedule.next_delay(now)
        self._push(w, now + (delay or 0.0))

    def _end(self, w: Watched, result: Ended) -> None:
        self.drop(w)
        self.stats.ended += 1
        if self.on_ended is not None:
            self.on_ended(w.task_id, w.attempt, result)

    # --- shutdown

    async def hand_back_all(self) -> int:
        """Stop stepping and hand back every held attempt (shielded); returns how many."""
        self.closing = True
        if self._timer is not None:
            self._timer.cancel()
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        steps = list(self._steps)
        for step in steps:
            step.cancel()  # a poll is harmless to cut; a finish is fenced, a repeat refused
        await asyncio.gather(*steps, return_exceptions=True)
        held = list(self.held.values())
        gate = asyncio.Semaphore(HAND_BACK_CONCURRENCY)

        async def one(w: Watched) -> None:
            async with gate:
                await self.settler.hand_back(w.task_id, w.attempt)
            self.drop(w)

        await asyncio.shield(asyncio.gather(*(one(w) for w in held), return_exceptions=True))
        return len(held)
