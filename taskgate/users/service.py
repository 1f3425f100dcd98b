"""Customers: plan, settings and API keys (stored only as SHA-256 digests).

The user hash also carries the plan's figures that the Lua scripts read (cap, weight, relax and
incorrect limits, penalty, failover); they are rewritten whenever the plan changes."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from redis.asyncio import Redis

from taskgate.catalogue.spec import Catalogue, Feature, PlanSpec
from taskgate.errors import InvalidInput, NotFound, Unauthorized
from taskgate.models import ServiceMode, now_ms
from taskgate.store import script_api
from taskgate.store.keys import Keys
from taskgate.web.ssrf import ForbiddenDestination, check_endpoint

if TYPE_CHECKING:
    from taskgate.billing.wallets import WalletService
    from taskgate.store.scripts import Scripts

log = structlog.get_logger(__name__)
API_KEY_PREFIX = "tg_"


def digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def key_digest(api_key: str | None) -> str:
    """The digest of a key that may exist; Unauthorized (without a Redis call) for one that cannot."""
    if not api_key or not api_key.startswith(API_KEY_PREFIX) or len(api_key) > 200:
        raise Unauthorized()
    return digest(api_key)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


# The user hash fields a UserRecord is built from (scripts that authenticate return these, in order;
# the first must be "id").
USER_FIELDS = (
    "id",
    "plan",
    "service_mode",
    "failover_setting",
    "failover",
    "webhook",
    "notify_endpoint",
    "created_ms",
)


@dataclass(frozen=True, slots=True)
class UserRecord:
    user_id: str
    plan: str
    service_mode: str = ""
    failover: bool = False
    webhook_endpoint: str = ""
    notify_endpoint: str = ""
    created_ms: int = 0

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> UserRecord:
        return cls(
            user_id=raw["id"],
            plan=raw["plan"],
            service_mode=raw.get("service_mode", ""),
            failover=raw.get("failover_setting", raw.get("failover")) == "1",
            webhook_endpoint=raw.get("webhook", ""),
            notify_endpoint=raw.get("notify_endpoint", ""),
            created_ms=int(raw.get("created_ms") or 0),
        )

    @classmethod
    def from_fields(cls, values: list[str | None]) -> UserRecord:
        """From the values of ``USER_FIELDS``, in order (None for an unset field)."""
        return cls.from_hash({k: v for k, v in zip(USER_FIELDS, values, strict=True) if v is not None})


def plan_lua_fields(plan: PlanSpec) -> dict[str, str]:
    """The plan's figures as the Lua scripts read them from a user hash (S1, B5, B6)."""
    return {
        "plan": plan.name,
        "cap": str(plan.concurrency),
        "relax_limit": str(plan.relax_daily),
        "incorrect_limit": str(plan.incorrect_daily),
        "incorrect_penalty": str(plan.incorrect_penalty),
    }


class UserService:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        catalogue: Catalogue,
        wallets: WalletService,
        plan_weights: dict[str, int] | None = None,
        *,
        allow_private_webhooks: bool = False,
    ) -> None:
        self.redis, self.keys, self.catalogue, self.wallets = redis, keys, catalogue, wallets
        self.scripts: Scripts = wallets.scripts
        self.plan_weights = plan_weights or {}
        self.allow_private_webhooks = allow_private_webhooks  # TASKGATE_WEBHOOK_ALLOW_PRIVATE

    def _plan_fields(self, plan_name: str, failover: bool) -> dict[str, str]:
        """The plan-derived fields that Lua reads; ``failover`` is effective only with the plan feature."""
        plan = self.catalogue.plan(plan_name)
        allowed = failover and plan.has(Feature.AUTO_FAILOVER)
        return {
            **plan_lua_fields(plan),
            "weight": str(self.plan_weights.get(plan.name, 1)),
            "features": ",".join(sorted(plan.features)),
            "failover": "1" if allowed else "0",
            "failover_setting": "1" if failover else "0",
        }

    async def create(
        self,
        plan: str,
        *,
        wallets: dict[str, int] | None = None,
        failover: bool = True,
        service_mode: str = "",
        name: str = "",
    ) -> tuple[str, str]:
        _service_mode(service_mode)
        fields = self._plan_fields(plan, failover)
        for unit, amount in (wallets or {}).items():
            if unit not in self.catalogue.units:
                raise InvalidInput("wallets", f"unknown unit {unit!r}")
            if int(amount) < 0:
                raise InvalidInput("wallets", f"{unit} must not be negative")
        user_id = uuid.uuid4().hex
        api_key = new_api_key()
        d = digest(api_key)
        record = {
            **fields,
            "id": user_id,
            "service_mode": service_mode,
            "webhook": "",
            "notify_endpoint": "",
            "name": name[:200],
            "created_ms": str(now_ms()),
        }
        # user, index and key appear together
        await script_api.create_user(self.scripts, self.keys, user_id=user_id, digest=d, fields=record)
        for unit, amount in (wallets or {}).items():
            if int(amount) > 0:
                await self.wallets.adjust(user_id, unit, int(amount), reason="initial", kind="top_up")
        log.info("user_created", user_id=user_id, plan=fields["plan"])
        return user_id, api_key

    async def authenticate(self, api_key: str | None) -> UserRecord:
        return await self.authenticate_digest(key_digest(api_key))

    async def authenticate_digest(self, key_digest: str) -> UserRecord:
        user_id = await self.redis.get(self.keys.api_key(key_digest))
        if user_id is None:
            raise Unauthorized()
        try:
            return await self.get(user_id.decode())
        except NotFound as exc:
            raise Unauthorized() from exc

    async def check_key(self, key_digest: str, user_id: str) -> None:
        """Unauthorized unless the API key with this digest still names ``user_id``."""
        owner = await self.redis.get(self.keys.api_key(key_digest))
        if owner is None or owner.decode() != user_id:
            raise Unauthorized()

    async def get(self, user_id: str) -> UserRecord:
        raw = await self.redis.hgetall(self.keys.user(user_id))
        if not raw:
            raise NotFound("user", user_id)
        return UserRecord.from_hash({k.decode(): v.decode() for k, v in raw.items()})

    async def show(self, user_id: str) -> dict[str, Any]:
        user = await self.get(user_id)
        plan = self.catalogue.plan(user.plan)
        return {
            "user_id": user.user_id,
            "plan": user.plan,
            "service_mode": user.service_mode,
            "failover": user.failover,
            "failover_effective": user.failover and plan.has(Feature.AUTO_FAILOVER),
            "webhook_endpoint": user.webhook_endpoint,
            "notify_endpoint": user.notify_endpoint,
            "created_ms": user.created_ms,
            "concurrency": plan.concurrency,
            "features": sorted(plan.features),
            "wallets": {
                u: {k: b[k] for k in ("available", "frozen", "consumed")}
                for u, b in (await self.wallets.balances(user_id)).items()
            },
        }

    async def list_users(self) -> list[dict[str, Any]]:
        ids = sorted(m.decode() for m in await self.redis.smembers(self.keys.users()))
        return [await self.show(i) for i in ids]

    async def rotate_key(self, user_id: str) -> str:
        """Replace every key of the user by one new key, in one script (no moment without a key)."""
        api_key = new_api_key()
        revoked = await script_api.rotate_api_key(
            self.scripts, self.keys, digest=digest(api_key), user_id=user_id
        )
        log.info("api_key_rotated", user_id=user_id, revoked=revoked)
        return api_key

    async def revoke_key(self, api_key_or_digest: str) -> None:
        d = digest(api_key_or_digest) if api_key_or_digest.startswith(API_KEY_PREFIX) else api_key_or_digest
        user_id = await script_api.revoke_api_key(self.scripts, self.keys, digest=d)
        log.info("api_key_revoked", user_id=user_id)

    async def update(
        self,
        user_id: str,
        *,
        plan: str | None = None,
        failover: bool | None = None,
        service_mode: str | None = None,
        webhook_endpoint: str | None = None,
        notify_endpoint: str | None = None,
        notify_secret: str | None = None,
    ) -> UserRecord:
        user = await self.get(user_id)
        changes: dict[str, str] = {}
        if plan is not None or failover is not None:
            changes |= self._plan_fields(plan or user.plan, user.failover if failover is None else failover)
        if service_mode is not None:
            changes["service_mode"] = _service_mode(service_mode)
        if webhook_endpoint is not None:
            changes["webhook"] = await self._endpoint("webhook_endpoint", webhook_endpoint)
        if notify_endpoint is not None:
            changes["notify_endpoint"] = await self._endpoint("notify_endpoint", notify_endpoint)
        if notify_secret is not None:  # signs account notifications (never returned by any API)
            changes["notify_secret"] = notify_secret
        if changes:
            await self.redis.hset(self.keys.user(user_id), mapping=changes)
        return await self.get(user_id)

    async def _endpoint(self, field: str, value: str) -> str:
        """ "" or the canonical URL of an endpoint webhooks may go to (the SSRF guard, §7)."""
        if not value:
            return ""
        try:
            return await check_endpoint(value, allow_private=self.allow_private_webhooks)
        except ForbiddenDestination as exc:
            raise InvalidInput(field, str(exc)) from None


def _service_mode(value: str) -> str:
    try:
        return str(ServiceMode(value))
    except ValueError as exc:
        raise InvalidInput("service_mode", "must be public, private or empty") from exc
