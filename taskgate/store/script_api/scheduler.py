"""Typed calls of the scheduler scripts (scheduler/lua): dispatch, pending reads, leases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from taskgate.store.keys import Keys
from taskgate.store.script_api.typed import now_arg, typed
from taskgate.store.scripts import Scripts


@dataclass(frozen=True, slots=True)
class DispatchedTask:
    task_id: str
    attempt: int
    account_id: str


@dataclass(frozen=True, slots=True)
class LeasesRenewal:
    deadline: int
    lost: list[str]  # not extended: attempt no longer current, or lease already reaped
    cancel: list[str]  # renewed, and their user asked to cancel


@typed("dispatch_tasks")
async def dispatch_tasks(
    s: Scripts,
    k: Keys,
    *,
    now: int | None = None,
    max_n: int,
    lease_ms: int,
    relax_pm: int,
    relax_wait: int,
    job_prefix: str,
    job_ttl_ms: int,
    max_wait_ms: int,
    max_queued: int = 0,
) -> list[DispatchedTask]:
    r = await s.call(
        "dispatch_tasks",
        keys=[k.sched(), k.arq_queue(), k.worker_jobs()],
        args=[
            k.base,
            now_arg(now),
            max_n,
            lease_ms,
            relax_pm,
            relax_wait,
            job_prefix,
            job_ttl_ms,
            max_wait_ms,
            max_queued,
        ],
    )
    flat = r[2:]
    return [DispatchedTask(flat[i], int(flat[i + 1]), flat[i + 2]) for i in range(0, len(flat), 3)]


@typed("read_pending")
async def read_pending(s: Scripts, k: Keys, *, now: int | None = None) -> str:
    r = await s.call(
        "read_pending", keys=[k.flow_meta(), k.flow_wait(), k.tasks_aside()], args=[k.base, now_arg(now)]
    )
    return str(r[1])


@typed("reap_leases")
async def reap_leases(
    s: Scripts,
    k: Keys,
    *,
    now: int | None = None,
    limit: int,
    max_attempts: int,
    lease_ms: int,
    job_prefix: str,
    progress_prefix: str,
) -> list[tuple[str, str]]:
    """(task_id, status) per expired lease: pending = retried, failed = given up, queued = its job
    still waits for a worker (lease extended, attempt kept)."""
    r = await s.call(
        "reap_leases",
        keys=[k.leases(), k.arq_queue()],
        args=[k.base, now_arg(now), limit, max_attempts, lease_ms, job_prefix, progress_prefix],
    )
    flat = r[2:]
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


@typed("renew_leases")
async def renew_leases(
    s: Scripts, k: Keys, *, now: int | None = None, lease_ms: int, leases: Sequence[tuple[str, int]]
) -> LeasesRenewal:
    """``leases``: (task_id, attempt) pairs, each fenced by its attempt."""
    pairs = [x for lease in leases for x in lease]
    r = await s.call("renew_leases", keys=[k.leases()], args=[k.base, now_arg(now), lease_ms, *pairs])
    return LeasesRenewal(int(r[1]), list(r[2]), list(r[3]))
