"""Script runs batched into pipelines: every run asked for in one turn of the event loop goes to
Redis in one pipeline (one write, one read, one pooled connection).

A process that serves many tasks at once (the API under load, a worker settling hundreds of
attempts) makes many small script calls in the same instant. Sent one by one, each pays
redis-py's per-command cost (take a connection from the pool, write, wait, parse) and a round
trip; batched, that cost is paid once per batch. Nothing waits for a batch to fill: the batch is
sent at the end of the loop turn in which its first run was asked for, so a lone call is not
delayed beyond that turn.

Each run keeps its own outcome: a script's error reply fails only that run; a dropped connection
fails every run of the batch (``Scripts.call`` retries each as before: they may have run, which is
why only idempotent scripts are retried after an unknown outcome). A script Redis does not know
(NOSCRIPT: a restarted or failed-over server) is loaded and its runs sent again.

Durability (``min_replicas`` > 0): one WAIT closes a batch that holds a durable run. WAIT counts
the replicas that acknowledged everything this connection wrote before it, so it covers every run
of the batch; too few replicas fail the durable runs with ``NotDurable`` (their effect may stand,
as with a lone call)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from taskgate.errors import NotDurable

MAX_BATCH = 512  # runs per pipeline: bounds one pipeline's size; a larger burst goes as several


@dataclass(slots=True)
class _Run:
    script: AsyncScript
    keys: list[str]
    args: list[Any]
    durable: bool
    done: asyncio.Future[Any]


class ScriptBatcher:
    def __init__(self, redis: Redis, min_replicas: int = 0, wait_timeout_ms: int = 1000) -> None:
        self.redis, self.min_replicas, self.wait_timeout_ms = redis, min_replicas, wait_timeout_ms
        self._queued: list[_Run] = []
        self._sending: set[asyncio.Task[None]] = set()  # strong references until each batch is sent

    async def submit(
        self, script: AsyncScript, keys: list[str], args: list[Any], *, durable: bool = False
    ) -> Any:
        """Run ``script`` in the next batch; its reply, or its error raised here."""
        loop = asyncio.get_running_loop()
        run = _Run(script, keys, args, durable and self.min_replicas > 0, loop.create_future())
        self._queued.append(run)
        if len(self._queued) == 1:
            loop.call_soon(self._flush)
        return await run.done

    def _flush(self) -> None:
        queued, self._queued = self._queued, []
        for start in range(0, len(queued), MAX_BATCH):
            task = asyncio.get_running_loop().create_task(self._send(queued[start : start + MAX_BATCH]))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Run]) -> None:
        try:
            replies = await self._execute(batch)
            if any(isinstance(r, NoScriptError) for r in replies):
                replies = await self._reload_and_resend(batch, replies)
        except Exception as exc:  # the connection failed: every run of the batch fails with it
            for run in batch:
                if not run.done.done():
                    run.done.set_exception(exc)
            return
        except BaseException:  # cancelled (the loop is closing): so are the runs waiting on it
            for run in batch:
                run.done.cancel()
            raise
        for run, reply in zip(batch, replies, strict=True):
            if run.done.done():
                continue  # its caller was cancelled; the run itself happened
            if isinstance(reply, Exception):
                run.done.set_exception(reply)
            else:
                run.done.set_result(reply)

    async def _execute(self, batch: list[_Run]) -> list[Any]:
        """One pipeline for ``batch`` (plus a WAIT if it holds a durable run); each run's reply or
        error, in order."""
        pipe = self.redis.pipeline(transaction=False)
        for run in batch:
            pipe.execute_command("EVALSHA", run.script.sha, len(run.keys), *run.keys, *run.args)
        durable = any(run.durable for run in batch)
        if durable:
            pipe.execute_command("WAIT", self.min_replicas, self.wait_timeout_ms)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        if durable:
            acked = replies.pop()
            if isinstance(acked, Exception):
                raise acked
            if int(acked) < self.min_replicas:
                short = NotDurable(int(acked), self.min_replicas)
                replies = [
                    short if run.durable and not isinstance(r, Exception) else r
                    for run, r in zip(batch, replies, strict=True)
                ]
        return replies

    async def _reload_and_resend(self, batch: list[_Run], replies: list[Any]) -> list[Any]:
        """Load the scripts Redis did not know, then send their runs once more."""
        unknown = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
        for script in {id(batch[i].script): batch[i].script for i in unknown}.values():
            script.sha = await self.redis.script_load(script.script)
        again = await self._execute([batch[i] for i in unknown])
        replies = list(replies)
        for i, reply in zip(unknown, again, strict=True):
            replies[i] = reply
        return replies
