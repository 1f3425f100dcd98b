"""Typed calls of the worker scripts (worker/lua): claiming popped arq jobs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from taskgate.store.keys import Keys
from taskgate.store.script_api.typed import flat_dict, now_arg, typed
from taskgate.store.scripts import Scripts


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    job_id: str
    score: int  # when the job was due (ms)
    data: str | None  # arq's job (JSON); None when the job key has expired
    job_try: int  # arq's retry counter, this start counted
    task: dict[str, str]  # the attempt's task hash; empty when gone or the job is not an attempt's


@typed("claim_jobs")
async def claim_jobs(
    s: Scripts,
    k: Keys,
    *,
    now: int | None = None,
    job_prefix: str,
    progress_prefix: str,
    retry_prefix: str,
    in_progress_ms: int,
    retry_ttl_s: int,
    jobs: Sequence[tuple[str, str]],
) -> list[ClaimedJob]:
    """``jobs``: (job id, task id or "") pairs; the answer lists the claimed ones only."""
    pairs = [part for job in jobs for part in job]
    r = await s.call(
        "claim_jobs",
        keys=[k.arq_queue()],
        args=[
            k.base,
            now_arg(now),
            job_prefix,
            progress_prefix,
            retry_prefix,
            in_progress_ms,
            retry_ttl_s,
            *pairs,
        ],
    )
    flat = r[1:]
    return [
        ClaimedJob(flat[i], int(flat[i + 1]), flat[i + 2], int(flat[i + 3]), flat_dict(flat[i + 4]))
        for i in range(0, len(flat), 5)
    ]
