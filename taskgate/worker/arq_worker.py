"""arq as the worker shell, tuned: JSON jobs, many concurrent jobs, no queue scan on the hot path,
and no per-job reads. arq's own loop sleeps ``poll_delay`` and then re-reads its whole queue sorted
set, checking every listed job (running ones included) with a WATCH transaction; here dispatch also
appends each new job id to a list, which workers pop (blocking when idle). arq's scan still runs,
slowly, to pick up anything left behind and to run cron and health checks.

Either way the jobs are claimed together by one script, ``claim_jobs.lua``, which also makes
arq's per-job start read (job data, retry counter) and reads each attempt's task hash; a
``run_task`` job then runs from what the claim read (``_run_lean``, arq's ``run_job`` from its
read on) and its task hash goes to ``TaskRunner.run``: popped jobs are claimed in one round trip
and start with no further read. Anything else is run by arq's own ``run_job``.

A job only submits (the watcher holds the attempt afterwards), so the jobs a worker starts are
bounded both by ``max_jobs`` and by the watcher's room: a full worker leaves jobs to the others."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import structlog
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix, retry_key_prefix
from arq.jobs import SerializationError, deserialize_job_raw
from arq.utils import ms_to_datetime, timestamp_ms
from arq.worker import Function, Retry, RetryJob, Worker
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from taskgate.errors import RedisUnavailable
from taskgate.store import script_api
from taskgate.store.keys import ARQ_IN_PROGRESS_KEY_PREFIX, ARQ_JOB_KEY_PREFIX, ARQ_RETRY_KEY_PREFIX, Keys
from taskgate.store.script_api import ClaimedJob
from taskgate.store.scripts import Scripts

log = structlog.get_logger(__name__)
SCAN_INTERVAL_S = 5.0  # arq's full queue scan: a safety net, not the way jobs normally start
RETRY_TTL_S = 88400  # arq's run_job: how long a job's retry counter lives
LEAN_FUNCTION = "run_task"  # the job dispatch writes; it takes the claim's task hash as task_hash


def job_serializer(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def job_deserializer(raw: bytes) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(raw)
    return result


class WakeWorker(Worker):
    """An arq Worker that starts dispatched jobs popped from ``Keys.worker_jobs``."""

    def __init__(
        self,
        *args: Any,
        keys: Keys,
        scripts: Scripts,
        room: Callable[[], int] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("job_serializer", job_serializer)  # the claim reads job data as text
        kwargs.setdefault("job_deserializer", job_deserializer)
        super().__init__(*args, **kwargs)
        self.keys, self.scripts = keys, scripts
        self.jobs_key = keys.worker_jobs()
        self.room = room  # attempts the watcher can still hold (None: no bound beyond max_jobs)
        # _run_lean skips what arq does for hooks, aborts and kept results; none is used by taskgate
        self.lean = not (
            self.on_job_start
            or self.on_job_end
            or self.after_job_end
            or self.allow_abort_jobs
            or self.keep_result_forever
            or self.keep_result_s > 0
        )

    def _free(self) -> int:
        free = self.max_jobs - self.job_counter
        if self.room is not None:
            free = min(free, self.room() - self.job_counter)  # running jobs will each hold one
        return free

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """arq's, for as many jobs as there is room for (arq's scan may list more), with every job
        claimed in one round trip: arq claims each job in turn (WATCH, EXISTS, ZSCORE, MULTI/EXEC:
        four round trips a job), then reads it as it starts (one more), which bounds how fast a
        worker submits when each job is short. The claim is the same key with the same meaning
        (arq's in-progress key, set only when absent), so a job running elsewhere (this or a stock
        arq worker) is skipped, and a job no longer queued (or delayed) is not claimed."""
        ids = [job_id.decode() for job_id in job_ids[: max(self._free(), 0)]]
        if not ids:
            return
        claimed = await script_api.claim_jobs(
            self.scripts,
            self.keys,
            now=timestamp_ms(),  # arq's clock: the worker's (a job is due once its score is past)
            job_prefix=ARQ_JOB_KEY_PREFIX,
            progress_prefix=ARQ_IN_PROGRESS_KEY_PREFIX,
            retry_prefix=ARQ_RETRY_KEY_PREFIX,
            in_progress_ms=int(self.in_progress_timeout_s * 1000),
            retry_ttl_s=RETRY_TTL_S,
            jobs=[(job_id, self._task_of(job_id)) for job_id in ids],
        )
        for job in claimed:
            await self.sem.acquire()
            self.job_counter += 1
            task = asyncio.get_running_loop().create_task(self._run_claimed(job))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job.job_id] = task

    def _task_of(self, job_id: str) -> str:
        attempt = self.keys.arq_job_attempt(job_id)
        return attempt[0] if attempt else ""

    async def _run_claimed(self, job: ClaimedJob) -> None:
        """Run a claimed job: a ``run_task`` job of an attempt as ``_run_lean``, any other by arq."""
        if not self.lean:
            return await self._run_by_arq(job)
        if job.data is None:  # as arq's run_job: an expired job is dropped, not run
            log.warning("arq_job_expired", job_id=job.job_id)
            return await self._fail(job.job_id)
        try:
            name, args, kwargs, enqueue_try, enqueue_ms = deserialize_job_raw(
                job.data.encode(), deserializer=self.job_deserializer
            )
        except SerializationError:
            return await self._run_by_arq(job)  # arq logs and fails it
        function = self.functions.get(name)
        attempt = self.keys.arq_job_attempt(job.job_id)  # the task whose hash the claim read
        if (
            name != LEAN_FUNCTION
            or not isinstance(function, Function)
            or function.keep_result_forever
            or (function.keep_result_s or 0) > 0
            or kwargs
            or attempt is None
            or list(args) != list(attempt)
        ):
            return await self._run_by_arq(job)
        return await self._run_lean(job, function, args, max(enqueue_try or 0, job.job_try), enqueue_ms)

    async def _run_by_arq(self, job: ClaimedJob) -> None:
        """arq's own run_job, which counts the start itself: the claim's count is taken back."""
        await self.pool.decr(retry_key_prefix + job.job_id)
        await self.run_job(job.job_id, job.score)

    async def _run_lean(
        self, job: ClaimedJob, function: Function, args: Any, job_try: int, enqueue_ms: int
    ) -> None:
        """arq 0.28's run_job from its read on, for a job that keeps no result: the same tries
        limit, timeout, cancellation (counted as a retry, the job left queued) and finish."""
        job_id = job.job_id
        if job_try > job.job_try:  # as arq: a job enqueued as a later try counts from there
            await self.pool.setex(retry_key_prefix + job_id, RETRY_TTL_S, str(job_try))
        max_tries = self.max_tries if function.max_tries is None else function.max_tries
        if job_try > max_tries:  # its earlier run died mid-way (a worker crash): not run again
            log.warning("arq_job_max_tries_exceeded", job_id=job_id, job_try=job_try, max_tries=max_tries)
            return await self._fail(job_id)
        timeout_s = self.job_timeout_s if function.timeout_s is None else function.timeout_s
        job_ctx = {"job_id": job_id, "job_try": job_try, "enqueue_time": ms_to_datetime(enqueue_ms)}
        ctx = {**self.ctx, **job_ctx, "score": job.score}
        finish, incr_score = True, None
        try:
            async with asyncio.timeout(timeout_s):
                await function.coroutine(ctx, *args, task_hash=job.task)
        except (Exception, asyncio.CancelledError) as exc:
            if self.retry_jobs and isinstance(exc, Retry | RetryJob | asyncio.CancelledError):
                finish = False  # left queued: arq's next run counts it a try (and fails it if it is over)
                if isinstance(exc, Retry) and exc.defer_score:
                    incr_score = exc.defer_score + (timestamp_ms() - job.score)
                log.info("arq_job_retried", job_id=job_id, reason=exc.__class__.__name__)
                self.jobs_retried += 1
            else:
                log.exception("arq_job_failed", job_id=job_id, function=function.name)
                self.jobs_failed += 1
        else:
            self.jobs_complete += 1
        await asyncio.shield(self.finish_job(job_id, finish, None, None, False, incr_score, None))

    async def _fail(self, job_id: str) -> None:
        self.jobs_failed += 1
        await asyncio.shield(self.finish_failed_job(job_id, None))

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
            except (RedisConnectionError, RedisTimeoutError, ReadOnlyError, RedisUnavailable, OSError) as exc:
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
