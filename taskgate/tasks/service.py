"""The task lifecycle as seen by the API (create, read, list, cancel) and by workers (fenced
progress, renewal and finish). Each change is one Lua script; this module prepares its arguments."""

from __future__ import annotations

import builtins
import hashlib
import json
import uuid
from typing import Any

import structlog
from redis.asyncio import Redis

from taskgate.catalogue.spec import Catalogue, TaskSpec
from taskgate.errors import InvalidInput, NotFound
from taskgate.models import CreateTaskRequest, Lane, Outcome, Pool, ServiceMode, TaskStatus, WaitReason
from taskgate.settings import Settings
from taskgate.store import script_api
from taskgate.store.keys import Keys, flow_id
from taskgate.store.scripts import Scripts
from taskgate.tasks.origin import check_origin
from taskgate.tasks.record import TaskRecord
from taskgate.users.service import USER_FIELDS, UserRecord, UserService
from taskgate.web.ssrf import ForbiddenDestination, check_endpoint

log = structlog.get_logger(__name__)

IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000
BONUS_TASK_TYPES = frozenset({"imagine", "blend"})  # B5: successful fast/turbo ones earn relax tasks


class TaskService:
    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        keys: Keys,
        settings: Settings,
        catalogue: Catalogue,
        users: UserService,
    ) -> None:
        self.redis, self.scripts, self.keys = redis, scripts, keys
        self.settings, self.catalogue, self.users = settings, catalogue, users

    # --- customer side -------------------------------------------------------------------
    async def create(
        self,
        user: UserRecord,
        req: CreateTaskRequest,
        idempotency_key: str | None = None,
        *,
        key_digest: str = "",
    ) -> dict[str, Any]:
        """``key_digest``: ``user`` came from a cache; the script checks that this API key still
        names the user and that plan and settings are as ``user`` says (Unauthorized, UserChanged)."""
        spec = self.catalogue.resolve(req.model, req.task_type)
        task_input = self.catalogue.validate_input(spec, req.input)
        await check_origin(self.load, user.user_id, spec.model, spec.task_type, task_input)
        plan = self.catalogue.plan(user.plan)
        await self._check_prompt(user, plan.features, task_input, key_digest)
        lane = self.catalogue.lane(spec, task_input)
        priced = self.catalogue.price(spec, task_input, plan)
        pool = self._pool_for(user, req)
        bot_id = str(task_input.get("bot_id") or "")
        if bot_id and (pool != Pool.BYOA or "bot_id" not in plan.features):
            raise InvalidInput(
                "input.bot_id", "bot_id needs a plan with the bot_id feature and a private pool"
            )
        task_id = str(uuid.uuid4())
        flow = flow_id(lane, pool, user.user_id, spec.provider_model, bot_id)
        relax = spec.relax_counted and lane == Lane.RELAX
        fields = self._static_fields(user, req, spec, task_input, lane, pool, bot_id)
        fields["webhook_endpoint"] = await self._webhook_endpoint(fields["webhook_endpoint"])
        if pool == Pool.BYOA:  # what a failover to the shared pool freezes (S6); PPU tasks freeze now
            fields |= {
                "ppu_unit": priced.unit,
                "ppu_price": str(priced.amount),
                "ppu_relax": "1" if relax else "0",
            }
        result = await script_api.create_task(
            self.scripts,
            self.keys,
            user_id=user.user_id,
            idem_digest=self._idem_digest(idempotency_key),
            task_id=task_id,
            fields=fields,
            unit=priced.unit,
            price=priced.amount if pool == Pool.PPU else 0,
            relax=relax,
            flow_id=flow,
            idem_ttl_ms=IDEMPOTENCY_TTL_MS if idempotency_key else 0,
            key_digest=key_digest,
            user_stamp=user_stamp(user) if key_digest else "",
        )
        if not result.created:
            return await self.get(user.user_id, result.task_id, user=user)
        log.info(
            "task_created",
            task_id=result.task_id,
            user_id=user.user_id,
            model=spec.model,
            task_type=spec.task_type,
            lane=str(lane),
            pool=str(pool),
        )
        return self._created_view(user, fields, flow, result)

    def _created_view(
        self, user: UserRecord, fields: dict[str, str], flow: str, result: script_api.CreatedTask
    ) -> dict[str, Any]:
        """The new task's view from what the create script wrote and returned (no read back): the
        hash it stored is ``fields`` without empty values, plus these."""
        stored = {k: v for k, v in fields.items() if v not in ("", "0")}
        stored |= {
            "id": result.task_id,
            "status": TaskStatus.PENDING,
            "created_ms": str(result.created_ms),
            "flow": flow,
        }
        if result.unit:
            stored["unit"] = result.unit
        if result.frozen > 0:
            stored["frozen"] = str(result.frozen)
        record = TaskRecord.from_hash(stored)
        record.wait_reason = result.flow_wait or WaitReason.QUEUED
        return self._to_api(record, user, result.running)

    async def get(
        self, user_id: str, task_id: str, *, user: UserRecord | None = None, flow: str | None = None
    ) -> dict[str, Any]:
        """The customer's view of one task, read in one round trip (task, running count, the user
        unless given, the wait reason of ``flow`` when the caller knows the task's flow)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.task(task_id))
        pipe.zcard(self.keys.user_leases(user_id))
        pipe.hget(self.keys.flow_wait(), flow or "")
        if user is None:
            pipe.hgetall(self.keys.user(user_id))
        raw, running, flow_wait, *raw_user = await pipe.execute()
        record = TaskRecord.from_hash(_decoded(raw)) if raw else None
        if record is not None and flow is not None and record.flow == flow and not record.wait_reason:
            record.wait_reason = flow_wait.decode() if flow_wait else WaitReason.QUEUED
        if record is None or record.user_id != user_id:
            raise NotFound("task", task_id)
        if user is None:
            if not raw_user[0]:
                raise NotFound("task", task_id)
            user = UserRecord.from_hash(_decoded(raw_user[0]))
        await self._fill_wait_reason(record)
        return self._to_api(record, user, int(running))

    async def get_for_key(self, key_digest: str, task_id: str) -> tuple[UserRecord, dict[str, Any]]:
        """The caller (by API key digest) and its view of one task, in one script call: the key is
        checked in the same step (Unauthorized when unknown, NotFound for another user's task)."""
        read = await script_api.read_task(
            self.scripts, self.keys, key_digest=key_digest, task_id=task_id, fields=USER_FIELDS
        )
        user = UserRecord.from_fields(read.user)
        record = TaskRecord.from_hash(read.task)
        if record.status == TaskStatus.PENDING and not record.wait_reason:
            record.wait_reason = read.flow_wait or WaitReason.QUEUED
        return user, self._to_api(record, user, read.running)

    async def list(self, user_id: str, *, page: int, size: int) -> tuple[builtins.list[dict[str, Any]], int]:
        user = await self.users.get(user_id)
        retention_s = self.catalogue.plan(user.plan).retention_s
        key = self.keys.user_tasks(user_id)
        newest = await self._now_ms()
        oldest = newest - retention_s * 1000
        total = int(await self.redis.zcount(key, oldest, "+inf"))
        start = (page - 1) * size
        ids = await self.redis.zrevrangebyscore(key, "+inf", oldest, start=start, num=size)
        views = []
        for raw_id in ids:
            record = await self.load(raw_id.decode())
            if record is not None:
                views.append(await self.view(record))
        return views, total

    async def cancel(self, user_id: str, task_ids: builtins.list[str]) -> builtins.list[dict[str, Any]]:
        """Cancel all of ``task_ids`` or none: one unknown or foreign id is NotFound naming it and
        nothing is cancelled (one script checks every id before it changes anything)."""
        await script_api.cancel_tasks(self.scripts, self.keys, user_id=user_id, task_ids=task_ids)
        log.info("tasks_cancel_requested", task_ids=task_ids[:10], count=len(task_ids), user_id=user_id)
        return [await self.get(user_id, task_id) for task_id in dict.fromkeys(task_ids)]

    # --- worker side (fenced by attempt) ---------------------------------------------------
    async def load(self, task_id: str) -> TaskRecord | None:
        raw = await self.redis.hgetall(self.keys.task(task_id))
        if not raw:
            return None
        return TaskRecord.from_hash({k.decode(): v.decode() for k, v in raw.items()})

    async def record_progress(
        self,
        task_id: str,
        attempt: int,
        *,
        upstream_id: str = "",
        progress: int | None = None,
        notify: bool = False,
    ) -> bool:
        """Store upstream id / progress; returns whether the user asked to cancel. StaleAttempt if fenced."""
        return await script_api.record_progress(
            self.scripts,
            self.keys,
            task_id=task_id,
            attempt=attempt,
            upstream_id=upstream_id,
            progress=progress,
            notify=notify,
        )

    async def finish(
        self,
        task_id: str,
        attempt: int,
        outcome: Outcome,
        *,
        output: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        blame_account: bool = False,
    ) -> script_api.FinishedAttempt:
        """End the attempt: the task's status afterwards and its settled fields (for the metrics).
        StaleAttempt / AlreadyFinal if fenced off."""
        finished = await script_api.finish_task(
            self.scripts,
            self.keys,
            task_id=task_id,
            attempt=attempt,
            outcome=str(outcome),
            output=output,
            error=error,
            max_attempts=self.settings.max_attempts,
            blame=blame_account,
        )
        log.info(
            "task_attempt_finished",
            task_id=task_id,
            attempt=attempt,
            outcome=str(outcome),
            status=finished.status,
        )
        return finished

    # --- helpers -----------------------------------------------------------------------------
    async def _check_prompt(
        self, user: UserRecord, features: frozenset[str], task_input: dict[str, Any], key_digest: str = ""
    ) -> None:
        """B8: banned words are refused before queueing and count as incorrect (unless skipped).
        A user from the API's cache is checked against its key first: a revoked key counts nothing."""
        if task_input.get("skip_prompt_check") and "skip_prompt_check" in features:
            return
        word = self.catalogue.check_prompt(task_input)
        if word is None:
            return
        if key_digest:
            await self.users.check_key(key_digest, user.user_id)
        await script_api.record_incorrect(self.scripts, self.keys, user_id=user.user_id)
        raise InvalidInput("input.prompt", f"contains the banned word {word!r} (prompt checker)")

    def _pool_for(self, user: UserRecord, req: CreateTaskRequest) -> Pool:
        mode = req.config.service_mode or ServiceMode(user.service_mode or "")
        return Pool.BYOA if mode == ServiceMode.PRIVATE else Pool.PPU

    def _static_fields(
        self,
        user: UserRecord,
        req: CreateTaskRequest,
        spec: TaskSpec,
        task_input: dict[str, Any],
        lane: Lane,
        pool: Pool,
        bot_id: str,
    ) -> dict[str, str]:
        webhook = req.config.webhook_config
        bonus = spec.counts_for_relax_bonus and lane in (Lane.FAST, Lane.TURBO)
        return {
            "user": user.user_id,
            "model": spec.model,
            "task_type": spec.task_type,
            "model_group": spec.provider_model,
            "lane": str(lane),
            "pool": str(pool),
            "bot_id": bot_id,
            "input": json.dumps(task_input),
            "config": req.config.model_dump_json(),
            "webhook_endpoint": webhook.endpoint or user.webhook_endpoint,
            "webhook_secret": webhook.secret,
            "bonus": "1" if bonus else "0",
        }

    async def _webhook_endpoint(self, endpoint: str) -> str:
        """The canonical endpoint, or a 400 naming the field when it can never be delivered to (§7)."""
        if not endpoint:
            return ""
        try:
            return await check_endpoint(endpoint, allow_private=self.settings.webhook_allow_private)
        except ForbiddenDestination as exc:
            raise InvalidInput("config.webhook_config.endpoint", str(exc)) from None

    def _idem_digest(self, idempotency_key: str | None) -> str:
        if not idempotency_key:
            return "-"
        if len(idempotency_key) > 255:
            raise InvalidInput("Idempotency-Key", "at most 255 characters")
        return hashlib.sha256(idempotency_key.encode()).hexdigest()

    async def view(self, record: TaskRecord, user: UserRecord | None = None) -> dict[str, Any]:
        """The §4 task object; ``user``: its owner when the caller has read it already."""
        user = user if user is not None else await self.users.get(record.user_id)
        running = 0
        if record.status == TaskStatus.PENDING and record.pool == Pool.PPU:
            running = int(await self.redis.zcard(self.keys.user_leases(record.user_id)))
        await self._fill_wait_reason(record)
        return self._to_api(record, user, running)

    async def _fill_wait_reason(self, record: TaskRecord) -> None:
        """A pending task says why it waits (S10): a task set aside carries its own reason, else its
        flow's (a second round trip, for pending tasks only)."""
        if record.status == TaskStatus.PENDING and not record.wait_reason:
            raw = await self.redis.hget(self.keys.flow_wait(), record.flow)
            record.wait_reason = raw.decode() if raw else WaitReason.QUEUED

    def _to_api(self, record: TaskRecord, user: UserRecord, running: int) -> dict[str, Any]:
        """``running``: the user's PPU tasks processing now (a pending PPU task is staged at the cap)."""
        plan = self.catalogue.plan(user.plan)
        pending_ppu = record.status == TaskStatus.PENDING and record.pool == Pool.PPU
        staged = pending_ppu and running >= plan.concurrency
        return record.to_api(staged=staged, show_progress="task_progress" in plan.features)

    async def _now_ms(self) -> int:
        sec, usec = await self.redis.time()
        return int(sec) * 1000 + int(usec) // 1000


def user_stamp(user: UserRecord) -> str:
    """What create_task.lua compares with the user hash (ARGV[11]): the fields a create decides on."""
    return "\n".join((user.plan, user.service_mode, user.webhook_endpoint))


def _decoded(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}
