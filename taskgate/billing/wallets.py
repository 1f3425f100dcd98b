"""Wallets: balances per unit, operator top-ups and adjustments, the ledger, the account view."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from redis.asyncio import Redis

from taskgate.catalogue.spec import Catalogue
from taskgate.errors import InvalidInput
from taskgate.store import script_api
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts


class Customer(Protocol):
    """What the account view reads of a customer (``users.service.UserRecord``): billing sits below
    users, so it names the fields it needs instead of importing the record."""

    @property
    def user_id(self) -> str: ...
    @property
    def plan(self) -> str: ...
    @property
    def service_mode(self) -> str: ...
    @property
    def failover(self) -> bool: ...


log = structlog.get_logger(__name__)

BALANCE_FIELDS = ("available", "frozen", "consumed", "deposited", "converted_in", "converted_out")
ADJUST_KINDS = frozenset({"top_up", "adjust"})
AMOUNT_MAX = 10**12  # one wallet change or initial balance; keeps balances exact in Lua's doubles


def utc_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y%m%d")


class WalletService:
    def __init__(self, redis: Redis, scripts: Scripts, keys: Keys, catalogue: Catalogue) -> None:
        self.redis, self.scripts, self.keys, self.catalogue = redis, scripts, keys, catalogue

    async def adjust(
        self, user_id: str, unit: str, amount: int, *, reason: str, kind: str = "top_up"
    ) -> dict[str, int]:
        if unit not in self.catalogue.units:
            raise InvalidInput("unit", f"unknown unit {unit!r}; known: {', '.join(self.catalogue.units)}")
        if kind not in ADJUST_KINDS:
            raise InvalidInput("kind", "must be top_up or adjust")
        if kind == "top_up" and amount <= 0:
            raise InvalidInput("amount", "a top-up must be a positive integer")
        if abs(amount) > AMOUNT_MAX:
            raise InvalidInput("amount", f"must be within ±{AMOUNT_MAX}")
        if not reason.strip():
            raise InvalidInput("reason", "a reason is required")
        balance = await script_api.adjust_wallet(
            self.scripts, self.keys, user_id=user_id, unit=unit, amount=int(amount), kind=kind, reason=reason
        )
        log.info("wallet_adjusted", user_id=user_id, unit=unit, amount=amount, kind=kind)
        return {"available": balance.available, "frozen": balance.frozen, "consumed": balance.consumed}

    async def balances(self, user_id: str) -> dict[str, dict[str, int]]:
        raw = await self.redis.hgetall(self.keys.wallet(user_id))
        out: dict[str, dict[str, int]] = {
            unit: {f: 0 for f in BALANCE_FIELDS} for unit in self.catalogue.units
        }
        for field, value in raw.items():
            unit, _, name = field.decode().rpartition(":")
            out.setdefault(unit, {f: 0 for f in BALANCE_FIELDS})[name] = int(value)
        return out

    async def ledger(self, user_id: str, count: int = 1000) -> list[dict[str, Any]]:
        entries = await self.redis.xrange(self.keys.ledger(user_id), count=count)
        return [
            {"id": eid.decode(), **{k.decode(): v.decode() for k, v in fields.items()}}
            for eid, fields in entries
        ]

    async def daily(self, user_id: str, now_ms: int) -> dict[str, int]:
        raw = await self.redis.hgetall(self.keys.daily(user_id, utc_day(now_ms)))
        return {k.decode(): int(v) for k, v in raw.items()}

    async def account_view(self, user: Customer) -> dict[str, Any]:
        """``GET /api/v1/account``: plan, wallets, PPU tasks running and cap, today's counters."""
        plan = self.catalogue.plan(user.plan)
        sec, usec = await self.redis.time()
        now_ms = int(sec) * 1000 + int(usec) // 1000
        day = await self.daily(user.user_id, now_ms)
        running = int(await self.redis.zcard(self.keys.user_leases(user.user_id)))
        balances = await self.balances(user.user_id)
        return {
            "user_id": user.user_id,
            "plan": plan.name,
            "wallets": {
                unit: {"available": b["available"], "frozen": b["frozen"], "consumed": b["consumed"]}
                for unit, b in balances.items()
            },
            "credits": balances.get("credits", {}).get("available", 0),
            "concurrency": {"running": running, "limit": plan.concurrency},
            "relax": {
                "used_today": day.get("relax_used", 0),
                "allowance": plan.relax_daily + day.get("relax_bonus", 0),
                "bonus_today": day.get("relax_bonus", 0),
            },
            "incorrect": {"today": day.get("incorrect", 0), "limit": plan.incorrect_daily},
            "service_mode": user.service_mode,
            "failover": user.failover,
        }
