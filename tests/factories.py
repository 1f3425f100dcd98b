"""Test factories that write users, accounts and tasks straight through the Lua layer."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from redis.asyncio import Redis

from taskgate.catalogue.spec import Catalogue
from taskgate.store.keys import Keys, flow_id
from taskgate.store.scripts import Scripts
from taskgate.users.service import plan_lua_fields

CATALOGUE = Catalogue.load()
# property tests run examples(n) examples: n for `make test`, more for a long run, e.g.
# TASKGATE_PROPERTY_SCALE=10 .venv/bin/pytest -q tests/billing/test_money_model.py
PROPERTY_SCALE = float(os.environ.get("TASKGATE_PROPERTY_SCALE", "1"))


def examples(n: int) -> int:
    return max(1, round(n * PROPERTY_SCALE))


# The plan figures Lua reads from a user hash, from the catalogue (never copied here).
PLAN_FIELDS = {name: plan_lua_fields(plan) for name, plan in CATALOGUE.plans.items()}


async def make_user(
    redis: Redis,
    scripts: Scripts,
    keys: Keys,
    *,
    plan: str = "free",
    weight: int = 1,
    failover: bool = False,
    wallets: dict[str, int] | None = None,
    **overrides: Any,
) -> str:
    user_id = uuid.uuid4().hex
    fields: dict[str, Any] = {
        "id": user_id,
        "plan": plan,
        "weight": weight,
        "failover": "1" if failover else "0",
        "service_mode": "",
        **PLAN_FIELDS[plan],
        **overrides,
    }
    await redis.hset(keys.user(user_id), mapping={k: str(v) for k, v in fields.items()})
    await redis.sadd(keys.users(), user_id)
    for unit, amount in (wallets or {}).items():
        await scripts.call(
            "adjust_wallet",
            keys=[keys.wallet(user_id), keys.ledger(user_id)],
            args=["", user_id, unit, amount, "top_up", "initial"],
        )
    return user_id


async def make_account(
    scripts: Scripts,
    keys: Keys,
    *,
    owner: str = "shared",
    models: str = "midjourney",
    modes: str = "relax,fast,turbo",
    capacity: int = 1,
    priority: int = 0,
    weight: int = 1,
    backup: bool = False,
    **extra: Any,
) -> str:
    account_id = uuid.uuid4().hex[:16]
    fields = {
        "owner": owner,
        "provider": "sim",
        "base_url": "http://127.0.0.1:1",
        "models": models,
        "modes": modes,
        "capacity": str(capacity),
        "priority": str(priority),
        "weight": str(weight),
        "daily_cap": "0",
        "backup": "1" if backup else "0",
        **{k: str(v) for k, v in extra.items()},
    }
    await scripts.call(
        "put_account",
        keys=[keys.account(account_id), keys.accounts(), keys.account_secret(account_id)],
        args=[keys.base, "", account_id, json.dumps(fields), "secret-" + account_id],
    )
    return account_id


async def enqueue(
    scripts: Scripts,
    keys: Keys,
    user_id: str,
    *,
    lane: str = "fast",
    pool: str = "ppu",
    model_group: str = "midjourney",
    unit: str = "mj_quota",
    price: int = 0,
    relax: bool = False,
    bot: str = "",
    now: int | str = "",
    idem: str = "",
    bonus: bool = False,
    ppu_price: int | None = None,
    webhook: str = "",
    webhook_secret: str = "",
) -> str:
    task_id = str(uuid.uuid4())
    flow = flow_id(lane, pool, user_id, model_group, bot)
    fields = {
        "user": user_id,
        "model": "midjourney",
        "task_type": "imagine",
        "model_group": model_group,
        "lane": lane,
        "pool": pool,
        "bot_id": bot,
        "input": "{}",
        "config": "{}",
        "webhook_endpoint": webhook,
        "webhook_secret": webhook_secret,
        "ppu_unit": unit,
        "ppu_price": str(price if ppu_price is None else ppu_price),
        "ppu_relax": "1" if relax else "0",
        "bonus": "1" if bonus else "0",
    }
    idem_key = keys.idempotency(user_id, idem or "-")
    result = await scripts.call(
        "create_task",
        keys=[
            keys.task(task_id),
            keys.user(user_id),
            keys.wallet(user_id),
            keys.ledger(user_id),
            keys.user_tasks(user_id),
            idem_key,
            keys.flow(flow),
        ],
        args=[
            keys.base,
            now,
            task_id,
            json.dumps(fields),
            unit,
            price if pool == "ppu" else 0,
            "1" if relax else "0",
            flow,
            60_000 if idem else 0,
            "",  # no API key re-check
            "",
        ],
    )
    return str(result[1])


async def task_fields(redis: Redis, keys: Keys, task_id: str) -> dict[str, str]:
    raw = await redis.hgetall(keys.task(task_id))
    return {k.decode(): v.decode() for k, v in raw.items()}


async def wallet(redis: Redis, keys: Keys, user_id: str, unit: str) -> dict[str, int]:
    raw = await redis.hgetall(keys.wallet(user_id))
    out = {"available": 0, "frozen": 0, "consumed": 0, "deposited": 0, "converted_in": 0, "converted_out": 0}
    for k, v in raw.items():
        u, _, f = k.decode().rpartition(":")
        if u == unit:
            out[f] = int(v)
    return out
