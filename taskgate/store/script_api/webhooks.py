"""Typed calls of the webhook scripts (webhooks/lua): claims, deliveries, reads."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taskgate.store.keys import Keys
from taskgate.store.script_api.typed import flat_dict, now_arg, typed
from taskgate.store.scripts import Scripts


@dataclass(frozen=True, slots=True)
class Claim:
    delivery_id: str
    task_id: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Claims:
    now: int
    claims: list[Claim]


@dataclass(frozen=True, slots=True)
class DeliveryRead:
    task: dict[str, str]  # empty when the task is gone
    owner: dict[str, str]  # the task's user, empty when unknown
    endpoint_gone: bool  # the task's endpoint answered 410 Gone earlier


def _outbox_keys(k: Keys) -> list[str]:
    return [k.webhook_outbox(), k.webhook_sent_seq(), k.webhook_inflight()]


@typed("claim_deliveries")
async def claim_deliveries(
    s: Scripts, k: Keys, *, now: int | None = None, limit: int, claim_ms: int
) -> Claims:
    r = await s.call("claim_deliveries", keys=_outbox_keys(k), args=[k.base, now_arg(now), limit, claim_ms])
    flat = r[2:]
    return Claims(int(r[1]), [Claim(flat[i], flat[i + 1], int(flat[i + 2])) for i in range(0, len(flat), 3)])


@typed("record_delivery")
async def record_delivery(
    s: Scripts,
    k: Keys,
    *,
    now: int | None = None,
    delivery_id: str,
    task_id: str,
    result: str,
    sent_seq: int,
    retry_at_ms: int = 0,
    record: Mapping[str, Any],
) -> int:
    """How many attempts the task's delivery log holds; ``record`` is JSON-encoded."""
    r = await s.call(
        "record_delivery",
        keys=[*_outbox_keys(k), k.webhook_delivery(delivery_id), k.webhook_attempts(task_id)],
        args=[now_arg(now), delivery_id, task_id, result, sent_seq, retry_at_ms, json.dumps(record), k.base],
    )
    return int(r[1])


@typed("read_delivery", key_args=("task_id",))
async def read_delivery(s: Scripts, k: Keys, *, task_id: str) -> DeliveryRead:
    r = await s.call("read_delivery", keys=[k.task(task_id), k.webhook_disabled()], args=[k.base])
    return DeliveryRead(flat_dict(r[1]), flat_dict(r[2]), bool(int(r[3])))
