"""Delivering the webhook outbox (§7): claim due deliveries atomically, post the task's current
state signed (GoAPI's ``x-webhook-secret`` and Standard Webhooks headers), and record every
attempt. At least once; one delivery in flight per task, so an older status never follows a newer
one; retried on ``Settings.webhook_retry_delays_s``; ``410 Gone`` disables the endpoint; 3xx is a
failure. A claim lasts ``Settings.webhook_claim_ms``: a sender that dies mid-delivery is replaced then."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog
import yarl
from redis.asyncio import Redis

from taskgate.logging import remember_secret
from taskgate.settings import Settings
from taskgate.store import script_api
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts
from taskgate.tasks.record import TaskRecord
from taskgate.users.service import UserRecord
from taskgate.web.ssrf import ForbiddenDestination, check_url, guarded_connector_kwargs
from taskgate.webhooks.signing import sign

log = structlog.get_logger(__name__)

CLAIM_BATCH = 100  # deliveries claimed per script call
MIN_WAIT_S = 0.005  # a retry due "now" is claimed after at least this (no hot loop on clock skew)
RELISTEN_DELAY_S = 0.5
DRAIN_S = 5.0  # at shutdown, how long POSTs in flight may still take
NOTIFICATION_PREFIX = "account:"  # deliveries of account notifications use this subject


async def list_attempts(redis: Redis, keys: Keys, task_id: str) -> list[dict[str, Any]]:
    """Every recorded attempt for a task, newest first (admin API)."""
    return [json.loads(raw) for raw in await redis.lrange(keys.webhook_attempts(task_id), 0, -1)]


def retry_delay_s(attempts_done: int, delays: tuple[float, ...]) -> float | None:
    """Delay after ``attempts_done`` failed attempts, or None when the schedule is exhausted."""
    if attempts_done - 1 < len(delays):
        return float(delays[attempts_done - 1])
    return None


class WebhookDispatcher:
    def __init__(
        self, redis: Redis, scripts: Scripts, keys: Keys, settings: Settings, view: Any = None
    ) -> None:
        self.redis, self.scripts, self.keys, self.settings = redis, scripts, keys, settings
        self.view = view  # TaskService.view: async (record, owner or None) -> dict; None: record.to_api
        self.session: aiohttp.ClientSession | None = None
        self.on_result: Callable[[str], None] | None = None  # metrics hook: one call per attempt
        self._sending: set[asyncio.Task[None]] = set()  # run_forever's POSTs in flight

    async def _session(self) -> aiohttp.ClientSession:
        if self.session is None:
            connector = aiohttp.TCPConnector(**guarded_connector_kwargs(self.settings.webhook_allow_private))
            self.session = aiohttp.ClientSession(connector=connector)
        return self.session

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop``: woken through ``Keys.webhook_wake`` as soon as a delivery is
        queued, with a poll every ``webhook_poll_interval_s`` (or sooner, when a retry falls due) as
        the fallback; up to ``webhook_max_in_flight`` POSTs at once, so one slow endpoint holds
        back no other task's delivery."""
        wake = asyncio.Event()
        listener = asyncio.create_task(self._listen_wake(stop, wake))
        try:
            while not stop.is_set():
                try:
                    wait_s = await self._round(wake)
                except Exception:
                    log.exception("webhook_round_failed")
                    wait_s = 1.0
                if wait_s > 0:
                    await _wait_any((stop, wake), wait_s)
        finally:
            listener.cancel()
            try:
                await self._drain()
            finally:
                await self.close()

    async def _round(self, wake: asyncio.Event) -> float:
        """Claim what is due into the free sending slots; returns how long to wait before the next
        claim (0: at once)."""
        wake.clear()  # a wake-up from now on is for deliveries this claim may not see
        free = self.settings.webhook_max_in_flight - len(self._sending)
        if free <= 0:
            return self.settings.webhook_poll_interval_s  # a finished delivery sets ``wake``
        now, claims = await self._claim(min(free, CLAIM_BATCH))
        for delivery_id, task_id, attempts in claims:
            sending = asyncio.create_task(self._deliver(delivery_id, task_id, attempts, now))
            self._sending.add(sending)
            sending.add_done_callback(lambda t: self._sent(t, wake))
        if len(claims) >= min(free, CLAIM_BATCH):
            return 0.0
        return await self._until_next_due(now)

    def _sent(self, sending: asyncio.Task[None], wake: asyncio.Event) -> None:
        was_full = len(self._sending) >= self.settings.webhook_max_in_flight
        self._sending.discard(sending)
        if not sending.cancelled() and sending.exception() is not None:
            log.error("webhook_delivery_failed", error=repr(sending.exception()))  # the claim expires
        if was_full:
            wake.set()

    async def _until_next_due(self, now_ms: int) -> float:
        """Seconds (Redis clock) until the earliest queued delivery is due, at most the poll interval."""
        first = await self.redis.zrange(self.keys.webhook_outbox(), 0, 0, withscores=True)
        poll_s = self.settings.webhook_poll_interval_s
        if not first:
            return poll_s
        return min(max((float(first[0][1]) - now_ms) / 1000, MIN_WAIT_S), poll_s)

    async def _listen_wake(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        """Block on the wake-up list; each token popped wakes the claim loop (tokens coalesce)."""
        key, timeout = self.keys.webhook_wake(), self.settings.webhook_poll_interval_s
        while not stop.is_set():
            try:
                if await self.redis.blpop([key], timeout=timeout) is not None:  # type: ignore[arg-type]  # float: Redis 6+
                    wake.set()
            except Exception:  # Redis away: the claim loop's poll covers the gap
                log.warning("webhook_wake_failed", exc_info=True)
                await asyncio.sleep(RELISTEN_DELAY_S)

    async def _drain(self) -> None:
        """At shutdown: let the POSTs in flight end (bounded); a cut one is retried once its claim expires."""
        try:
            if self._sending:
                await asyncio.wait(set(self._sending), timeout=min(self.settings.webhook_timeout_s, DRAIN_S))
        finally:  # also when the drain itself is cancelled (the worker's own grace ran out)
            for sending in list(self._sending):
                sending.cancel()

    async def _claim(self, limit: int, now_ms: int | None = None) -> tuple[int, list[tuple[str, str, int]]]:
        k = self.keys
        claimed = await script_api.claim_deliveries(
            self.scripts, k, now=now_ms, limit=limit, claim_ms=self.settings.webhook_claim_ms
        )
        return claimed.now, [(c.delivery_id, c.task_id, c.attempts) for c in claimed.claims]

    async def run_due(self, limit: int = 100, *, now_ms: int | None = None) -> int:
        """Claim and deliver due deliveries, waiting for them; returns how many were attempted."""
        now, claims = await self._claim(limit, now_ms)
        await asyncio.gather(*(self._deliver(d, t, a, now) for d, t, a in claims))
        return len(claims)

    async def _payload(self, delivery_id: str, subject: str) -> tuple[str, str, int, dict[str, Any], bool]:
        """(endpoint, secret, seq, data, disabled) of a delivery: a task's current state, or an
        account notification (subject "account:<owner>", DESIGN.md §7). ``disabled``: the endpoint
        answered 410 Gone earlier (read with the task and its owner in one script call)."""
        if subject.startswith(NOTIFICATION_PREFIX):
            raw = await self.redis.hgetall(self.keys.webhook_delivery(delivery_id))
            d = {k.decode(): v.decode() for k, v in raw.items()}
            event = json.loads(d.get("event") or "{}")
            endpoint = d.get("endpoint", "")
            disabled = bool(endpoint) and await self._disabled(endpoint)
            return endpoint, d.get("secret", ""), int(d.get("seq") or 0), event, disabled
        k = self.keys
        read = await script_api.read_delivery(self.scripts, k, task_id=subject)
        task, owner = read.task, read.owner
        if not task:
            return "", "", 0, {}, False
        record = TaskRecord.from_hash(task)
        if self.view is None:
            data = record.to_api()
        else:  # the owner read above saves the view a round trip
            data = await self.view(record, UserRecord.from_hash(owner) if owner else None)
        endpoint, gone = task.get("webhook_endpoint", ""), read.endpoint_gone
        seq = int(task.get("status_seq") or 0)
        return endpoint, task.get("webhook_secret", ""), seq, data, gone

    async def _disabled(self, endpoint: str) -> bool:
        return bool(await self.redis.sismember(self.keys.webhook_disabled(), endpoint))

    async def _deliver(self, delivery_id: str, task_id: str, attempts: int, now_ms: int) -> None:
        endpoint, secret, seq, data, disabled = await self._payload(delivery_id, task_id)
        remember_secret(secret)  # scrubbed by value from this delivery's log lines (its own task)
        if not endpoint or disabled:
            why = "endpoint disabled (410 Gone earlier)" if endpoint else "no endpoint"
            await self._record(delivery_id, task_id, "give_up", seq, now_ms, {"status": None, "error": why})
            return
        body = json.dumps({"timestamp": now_ms // 1000, "data": data}, separators=(",", ":")).encode()
        sent_ms = int(time.time() * 1000)  # the sender's wall clock as the POST starts (benchmarks)
        status, error, latency_ms = await self._post(endpoint, secret, delivery_id, now_ms // 1000, body)
        record = {
            "delivery": delivery_id,
            "attempt": attempts + 1,
            "status": status,
            "error": error,
            "latency_ms": latency_ms,
            "at": now_ms,
            "sent_ms": sent_ms,
            "task_status": data.get("status") or data.get("state"),
        }
        if status is not None and 200 <= status < 300:
            await self._record(delivery_id, task_id, "delivered", seq, now_ms, record)
        elif status == 410:
            await self.redis.sadd(self.keys.webhook_disabled(), endpoint)
            await self._record(delivery_id, task_id, "give_up", seq, now_ms, record)
            log.warning("webhook_endpoint_disabled", task_id=task_id, endpoint=endpoint)
        else:
            delay = retry_delay_s(attempts + 1, self.settings.webhook_retry_delays_s)
            outcome = "retry" if delay is not None and error != "forbidden destination" else "give_up"
            await self._record(
                delivery_id, task_id, outcome, seq, now_ms, record, retry_at=now_ms + int((delay or 0) * 1000)
            )

    async def _post(
        self,
        endpoint: str,
        secret: str,
        msg_id: str,
        ts: int,
        body: bytes,
    ) -> tuple[int | None, str | None, float]:
        headers = {
            "content-type": "application/json",
            "x-webhook-secret": secret,
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(secret, msg_id, ts, body),
        }
        started = time.perf_counter()
        try:
            dest = check_url(endpoint, allow_private=self.settings.webhook_allow_private)
            url = yarl.URL(dest.url, encoded=True)
            if url.host != dest.host:  # the client must connect to the host that was checked
                raise ForbiddenDestination(f"the HTTP client reads the host as {url.host!r}")
            session = await self._session()
            timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout_s)
            async with session.post(
                url, data=body, headers=headers, allow_redirects=False, timeout=timeout
            ) as resp:
                await resp.read()
                status, error = resp.status, None if resp.status < 300 else f"HTTP {resp.status}"
        except ForbiddenDestination as exc:
            status, error = None, "forbidden destination"
            log.warning("webhook_refused", endpoint=endpoint[:300], reason=str(exc)[:300])
        except TimeoutError:
            status, error = None, "timeout"
        except aiohttp.ClientError as exc:
            status, error = None, f"{exc.__class__.__name__}: {exc}"[:300]
        return status, error, round((time.perf_counter() - started) * 1000, 2)

    async def _record(
        self,
        delivery_id: str,
        task_id: str,
        result: str,
        seq: int,
        now_ms: int,
        record: dict[str, Any],
        retry_at: int = 0,
    ) -> None:
        await script_api.record_delivery(
            self.scripts,
            self.keys,
            now=now_ms,
            delivery_id=delivery_id,
            task_id=task_id,
            result=result,
            sent_seq=seq,
            retry_at_ms=retry_at,
            record=record,
        )
        if self.on_result is not None:
            self.on_result(result)
        log.info(
            "webhook_attempted",
            task_id=task_id,
            delivery=delivery_id,
            result=result,
            status=record.get("status"),
            error=record.get("error"),
        )


async def _wait_any(events: tuple[asyncio.Event, ...], timeout_s: float) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
