"""The account registry: shared and BYOA accounts, their credentials, state and index (S8)."""

from __future__ import annotations

import builtins
import re
import uuid
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from redis.asyncio import Redis

from taskgate.catalogue.input_fields import field_error
from taskgate.catalogue.spec import Catalogue
from taskgate.errors import InvalidInput, NotFound
from taskgate.logging import remember_secret
from taskgate.metrics.waiting import pending_summary
from taskgate.models import AccountState, Lane
from taskgate.providers.base import AccountAccess
from taskgate.settings import Settings
from taskgate.store import script_api
from taskgate.store.keys import SHARED_OWNER, Keys
from taskgate.store.scripts import Scripts

log = structlog.get_logger(__name__)

DEFAULT_MODELS = (
    "midjourney",
    "flux",
    "kling",
    "luma",
    "hailuo",
    "suno",
    "faceswap",
    "image-toolkit",
    "qubico",
)
PUBLIC_FIELDS = (
    "id",
    "owner",
    "provider",
    "base_url",
    "models",
    "modes",
    "capacity",
    "priority",
    "weight",
    "daily_cap",
    "backup",
    "state",
    "state_reason",
    "cooldown_until",
    "created_ms",
)


class AccountSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: str = SHARED_OWNER
    provider: str = Field("sim", pattern=r"^(sim|goapi)$")
    base_url: str = ""  # sim only: "" = the deployment's simulator (Settings.sim_url, read by workers)
    api_key: SecretStr = SecretStr("")
    models: list[str] = Field(default_factory=lambda: list(DEFAULT_MODELS))
    modes: list[Lane] = Field(default_factory=lambda: [Lane.RELAX, Lane.FAST, Lane.TURBO])
    capacity: int = Field(1, ge=1, le=10_000)
    mode_capacity: dict[Lane, int] = Field(default_factory=dict)
    priority: int = Field(0, ge=0, le=1000)
    weight: int = Field(1, ge=1, le=999)
    daily_cap: int = Field(0, ge=0)
    backup: bool = False

    @field_validator("models")
    @classmethod
    def _models(cls, value: list[str]) -> list[str]:
        value = [m.strip() for m in value if m.strip()]
        if not value:
            return list(DEFAULT_MODELS)
        for m in value:  # families and model names (``Qubico/flux1-schnell``); the registry resolves them
            if len(m) > 128 or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]*", m):
                raise ValueError(f"model {m!r}: letters, digits and - _ . / only")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _goapi_needs_url(self) -> AccountSpec:
        if self.provider != "sim" and not self.base_url:
            raise field_error("base_url", f"is required for provider {self.provider}")
        return self

    def fields(self) -> dict[str, str]:
        out = {
            "owner": self.owner,
            "provider": self.provider,
            "base_url": self.base_url,
            "models": ",".join(self.models),
            "modes": ",".join(str(m) for m in self.modes),
            "capacity": str(self.capacity),
            "priority": str(self.priority),
            "weight": str(self.weight),
            "daily_cap": str(self.daily_cap),
            "backup": "1" if self.backup else "0",
        }
        out.update({f"cap_{mode}": str(n) for mode, n in self.mode_capacity.items()})
        return out


def sim_default_key(account_id: str) -> str:
    """The key a sim account added without one gets: one key per account, so the simulator's
    per-key behaviour (bans, captchas, rate limits) stays per account."""
    return f"sim-{account_id}"


class AccountRegistry:
    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        keys: Keys,
        settings: Settings,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.redis, self.scripts, self.keys, self.settings = redis, scripts, keys, settings
        self.catalogue = catalogue if catalogue is not None else Catalogue.load(settings.catalogue_path)

    def _resolved(self, spec: AccountSpec) -> AccountSpec:
        """The spec with its models as the families tasks are matched on (``mj`` -> ``midjourney``)."""
        return spec.model_copy(update={"models": self.catalogue.account_models(spec.models)})

    async def add(self, spec: AccountSpec) -> str:
        spec = self._resolved(spec)
        if spec.owner != SHARED_OWNER and not await self.redis.exists(self.keys.user(spec.owner)):
            raise InvalidInput("owner", f"no user {spec.owner!r}; use 'shared' or a user id")
        account_id = uuid.uuid4().hex[:16]
        secret = spec.api_key.get_secret_value()
        if not secret and spec.provider == "sim":  # the simulator accepts any non-empty key
            secret = sim_default_key(account_id)
        await self._put(account_id, spec.fields(), secret)
        log.info(
            "account_added",
            account_id=account_id,
            owner=spec.owner,
            provider=spec.provider,
            capacity=spec.capacity,
        )
        return account_id

    async def update(self, account_id: str, **changes: Any) -> dict[str, Any]:
        current = await self._raw(account_id)
        merged = {
            "owner": current["owner"],
            "provider": current["provider"],
            "base_url": current["base_url"],
            "models": current["models"].split(","),
            "modes": [m for m in current["modes"].split(",") if m],
            "capacity": int(current["capacity"]),
            "priority": int(current.get("priority", 0)),
            "weight": int(current.get("weight", 1)),
            "daily_cap": int(current.get("daily_cap", 0)),
            "backup": current.get("backup") == "1",
        }
        merged.update({k: v for k, v in changes.items() if v is not None})
        spec = self._resolved(AccountSpec.model_validate(merged))
        await self._put(account_id, spec.fields(), spec.api_key.get_secret_value())
        return await self.get(account_id)

    async def _put(self, account_id: str, fields: dict[str, str], secret: str) -> None:
        await script_api.put_account(
            self.scripts, self.keys, account_id=account_id, fields=fields, secret=secret
        )

    async def _raw(self, account_id: str) -> dict[str, str]:
        raw = await self.redis.hgetall(self.keys.account(account_id))
        if not raw:
            raise NotFound("account", account_id)
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def get(self, account_id: str) -> dict[str, Any]:
        raw = await self._raw(account_id)
        view: dict[str, Any] = {k: raw.get(k, "") for k in PUBLIC_FIELDS}
        view["models"] = raw.get("models", "").split(",")
        view["modes"] = raw.get("modes", "").split(",")
        view["backup"] = raw.get("backup") == "1"
        for name in ("capacity", "priority", "weight", "daily_cap"):
            view[name] = int(raw.get(name) or 0)
        view["running"] = int(await self.redis.zcard(self.keys.account_leases(account_id)))
        return view

    async def list(self, owner: str | None = None) -> builtins.list[dict[str, Any]]:
        key = self.keys.owner_accounts(owner) if owner else self.keys.accounts()
        ids = sorted(m.decode() for m in await self.redis.smembers(key))
        return [await self.get(i) for i in ids]

    async def access(self, account_id: str) -> AccountAccess:
        """Credentials for a worker's upstream call; never returned by any API."""
        raw = await self._raw(account_id)
        secret = await self.redis.get(self.keys.account_secret(account_id))
        remember_secret(secret.decode() if secret else "")  # scrubbed by value from this job's logs
        return AccountAccess(
            account_id=account_id,
            provider=raw["provider"],
            base_url=raw["base_url"] or self.settings.sim_url,
            api_key=SecretStr(secret.decode() if secret else ""),
        )

    async def set_state(
        self,
        account_id: str,
        state: AccountState,
        *,
        by: str = "operator",
        reason: str = "",
        until_ms: int = 0,
    ) -> tuple[str, str]:
        change = await script_api.set_account_state(
            self.scripts,
            self.keys,
            account_id=account_id,
            state=str(state),
            until_ms=until_ms,
            by=by,
            reason=reason,
        )
        if change.old_state != change.new_state:
            log.info(
                "account_state_changed",
                account_id=account_id,
                old=change.old_state,
                new=change.new_state,
                by=by,
                reason=reason,
            )
        return change.old_state, change.new_state

    async def pause(self, account_id: str) -> None:
        await self.set_state(account_id, AccountState.DISABLED, reason="paused by operator")

    async def resume(self, account_id: str) -> None:
        await self.set_state(account_id, AccountState.ACTIVE, reason="resumed by operator")

    async def remove(self, account_id: str) -> None:
        if not await script_api.remove_account(self.scripts, self.keys, account_id=account_id):
            raise NotFound("account", account_id)
        log.info("account_removed", account_id=account_id)

    async def pool_status(self) -> dict[str, Any]:
        """Accounts per state (with each non-active account and its reason) and what waits (S10)."""
        accounts = await self.list()
        by_state: dict[str, int] = {}
        states: dict[str, builtins.list[dict[str, Any]]] = {}
        for acc in accounts:
            by_state[acc["state"]] = by_state.get(acc["state"], 0) + 1
            if acc["state"] != AccountState.ACTIVE:
                states.setdefault(acc["state"], []).append(
                    {
                        "account_id": acc["id"],
                        "owner": acc["owner"],
                        "reason": acc["state_reason"],
                        "cooldown_until": acc["cooldown_until"] or None,
                    }
                )
        return {
            "accounts": len(accounts),
            "by_state": by_state,
            "not_active": states,
            "capacity": sum(a["capacity"] for a in accounts),
            "running": sum(a["running"] for a in accounts),
            **(await pending_summary(self.scripts, self.keys)).as_dict(),
        }

    async def events(self, owner: str, count: int = 100) -> builtins.list[dict[str, str]]:
        entries = await self.redis.xrevrange(self.keys.account_events(owner), count=count)
        return [{k.decode(): v.decode() for k, v in f.items()} for _, f in entries]
