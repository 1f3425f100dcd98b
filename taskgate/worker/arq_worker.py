"""arq as the worker shell, tuned: JSON jobs, many concurrent jobs, and no queue scan on the hot
path. arq's own loop sleeps ``poll_delay`` and then re-reads its whole queue sorted set, checking
every listed job (running ones included) with a WATCH transaction; here dispatch also appends each
new job id to a list, which workers pop (blocking when idle) and claim in one round trip. arq's
scan still runs, slowly, to pick up anything left behind and to run cron and health checks.

A job only submits (the watcher holds the attempt afterwards), so the jobs a worker starts are
bounded both by ``max_jobs`` and by the watcher's room: a full worker leaves jobs to the others."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import structlog
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix, retry_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from taskgate.store.keys import Keys

log = structlog.get_logger(__name__)
SCAN_INTERVAL_S = 5.0  # arq's full queue scan: a safety net, not the way jobs normally start


def job_serializer(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def job_deserializer(raw: bytes) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(raw)
    return result


class WakeWorker(Worker):
    """An arq Worker that starts dispatched jobs popped from ``Keys.worker_jobs``."""

    def __init__(self, *args: Any, keys: Keys, room: Callable[[], int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.jobs_key = keys.worker_jobs()
        self.room = room  # attempts the watcher can still hold (None: no bound beyond max_jobs)

    def _free(self) -> int:
        free = self.max_jobs - self.job_counter
        if self.room is not None:
            free = min(free, self.room() - self.job_counter)  # running jobs will each hold one
        return free

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """arq's, for as many jobs as there is room for (arq's scan may list more), with every job
        claimed in one round trip: arq claims each job in turn (WATCH, EXISTS, ZSCORE, MULTI/EXEC:
        four round trips a job), which bounds how fast a worker submits when each job is short.
        The claim is the same key with the same meaning: ``SET NX`` on arq's in-progress key, so a
        job running elsewhere (this or a stock arq worker) is skipped, and a job no longer queued
        (or delayed) lets its claim go at once."""
        ids = [job_id.decode() for job_id in job_ids[: max(self._free(), 0)]]
        if not ids:
            return
        timeout_ms = int(self.in_progress_timeout_s * 1000)
        async with self.pool.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.set(in_progress_key_prefix + job_id, b"1", px=timeout_ms, nx=True)
                pipe.zscore(self.queue_name, job_id)
            replies = await pipe.execute()
        now, unclaim = timestamp_ms(), []
        for job_id, claimed, score in zip(ids, replies[::2], replies[1::2], strict=True):
            if not claimed:
                continue  # running elsewhere
            if not score or score > now:  # finished meanwhile, or re-enqueued with a delay
                unclaim.append(in_progress_key_prefix + job_id)
                continue
            await self.sem.acquire()
            self.job_counter += 1
            task = asyncio.get_running_loop().create_task(self.run_job(job_id, int(score)))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task
        if unclaim:
            await self.pool.delete(*unclaim)

    async def main(self) -> None:  # mirrors arq.Worker.main; see the module docstring
        if self._pool is None:
            from arq.connections import create_pool

            self._pool = await create_pool(
                self.redis_settings,
                job_deserializer=self.job_deserializer,
                job_serializer=self.job_serializer,
                default_queue_name=self.queue_name,
                expires_extra_ms=self.expires_extra_ms,
            )
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        loop = asyncio.get_running_loop()
        next_scan = 0.0
        while True:
            try:
                if loop.time() >= next_scan:
                    await self._poll_iteration()
                    next_scan = loop.time() + SCAN_INTERVAL_S
                await self._start_popped()
            except (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError) as exc:
                # Redis restarting or failing over: keep the running attempts, try again; leases cover it
                log.warning("worker_redis_unavailable", error=exc.__class__.__name__)
                await asyncio.sleep(0.5)
            except Exception:  # the loop must outlive any one failure; attempts are lease-protected
                log.exception("worker_loop_failed")
                await asyncio.sleep(0.5)
            self._forget_done()

    async def _start_popped(self) -> None:
        free = self._free()
        if not self.allow_pick_jobs or free <= 0:
            await asyncio.sleep(0.01)
            return
        ids = await self.pool.lpop(self.jobs_key, free)
        if not ids:
            popped = await self.pool.blpop([self.jobs_key], timeout=self.poll_delay_s)  # type: ignore[arg-type]
            ids = [popped[1]] if popped else []
        if ids:
            await self.start_jobs(ids)

    def _forget_done(self) -> None:
        for job_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[job_id]
                if not task.cancelled() and task.exception() is not None:
                    # arq's bookkeeping failed (Redis away): the attempt's lease recovers the task
                    log.warning("arq_job_bookkeeping_failed", job_id=job_id, error=str(task.exception()))

    # arq's finish_job / finish_failed_job also ZREM the job from arq's global "arq:abort" set in the
    # same transaction: a key outside the deployment's hash tag (a cross-slot transaction in a Redis
    # Cluster). taskgate never aborts arq jobs (cancel goes through cancel_task.lua; allow_abort_jobs is
    # off), so these mirrors of arq 0.28's methods leave that set alone.

    async def finish_job(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        async with self.pool.pipeline(transaction=True) as tr:
            delete_keys = []
            if keep_in_progress is None:
                delete_keys.append(in_progress_key_prefix + job_id)
            else:
                tr.pexpire(in_progress_key_prefix + job_id, round(keep_in_progress * 1000))
            if finish:
                if result_data:
                    forever = keep_result_forever or result_timeout_s is None
                    px = None if forever else round((result_timeout_s or 0) * 1000)
                    tr.set(result_key_prefix + job_id, result_data, px=px)
                delete_keys += [retry_key_prefix + job_id, job_key_prefix + job_id]
                tr.zrem(self.queue_name, job_id)
            elif incr_score:
                tr.zincrby(self.queue_name, incr_score, job_id)
            if delete_keys:
                tr.delete(*delete_keys)
            await tr.execute()

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        async with self.pool.pipeline(transaction=True) as tr:
            tr.delete(retry_key_prefix + job_id, in_progress_key_prefix + job_id, job_key_prefix + job_id)
            tr.zrem(self.queue_name, job_id)
            if result_data is not None and (self.keep_result_forever or self.keep_result_s > 0):
                px = None if self.keep_result_forever else round(self.keep_result_s * 1000)
                tr.set(result_key_prefix + job_id, result_data, px=px)
            await tr.execute()
