"""The admin API under ``/admin/v1`` (header ``x-admin-token``): users, keys, wallets, accounts."""

from __future__ import annotations

import importlib
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from taskgate.api.auth import require_admin
from taskgate.api.requests import json_body, parse
from taskgate.api.state import SERVICES
from taskgate.billing.wallets import AMOUNT_MAX
from taskgate.errors import InvalidInput
from taskgate.pool.registry import AccountSpec
from taskgate.web.envelope import error, ok

routes = web.RouteTableDef()
P = "/admin/v1"
Amount = Annotated[int, Field(ge=0, le=AMOUNT_MAX)]


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan: str
    credits: Amount = 0
    mj_quota: Amount = 0
    wallets: dict[str, Amount] = Field(default_factory=dict)
    failover: bool = True
    service_mode: str = ""
    name: str = ""


class UserChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan: str | None = None
    failover: bool | None = None
    service_mode: str | None = None
    webhook_endpoint: str | None = None
    notify_endpoint: str | None = None
    notify_secret: str | None = Field(None, max_length=200)


class WalletChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit: str
    amount: int = Field(ge=-AMOUNT_MAX, le=AMOUNT_MAX)
    reason: str = Field(min_length=1, max_length=500)
    kind: str = "top_up"


class AccountChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_url: str | None = None
    models: list[str] | None = None
    modes: list[str] | None = None
    capacity: int | None = Field(None, ge=1)
    priority: int | None = Field(None, ge=0)
    weight: int | None = Field(None, ge=1)
    daily_cap: int | None = Field(None, ge=0)
    backup: bool | None = None
    mode_capacity: dict[str, int] | None = None
    api_key: SecretStr | None = None  # new upstream credentials; never returned


def invalid_input(exc: ValidationError) -> InvalidInput:
    first = exc.errors()[0]
    return InvalidInput(".".join(str(p) for p in first["loc"]) or "body", first["msg"])


async def _admin_body(request: web.Request) -> dict[str, Any]:
    require_admin(request)
    return await json_body(request)


@routes.post(P + "/users")
async def create_user(request: web.Request) -> web.Response:
    body = parse(NewUser, await _admin_body(request))
    wallets = dict(body.wallets)
    if body.credits:
        wallets["credits"] = body.credits
    if body.mj_quota:
        wallets["mj_quota"] = body.mj_quota
    user_id, api_key = await request.app[SERVICES].users.create(
        body.plan, wallets=wallets, failover=body.failover, service_mode=body.service_mode, name=body.name
    )
    return ok({"user_id": user_id, "api_key": api_key})


@routes.get(P + "/users")
async def list_users(request: web.Request) -> web.Response:
    require_admin(request)
    return ok(await request.app[SERVICES].users.list_users())


@routes.get(P + "/users/{user_id}")
async def show_user(request: web.Request) -> web.Response:
    require_admin(request)
    return ok(await request.app[SERVICES].users.show(request.match_info["user_id"]))


@routes.patch(P + "/users/{user_id}")
async def update_user(request: web.Request) -> web.Response:
    changes = parse(UserChanges, await _admin_body(request))
    services = request.app[SERVICES]
    await services.users.update(request.match_info["user_id"], **changes.model_dump())
    return ok(await services.users.show(request.match_info["user_id"]))


@routes.post(P + "/users/{user_id}/keys")
async def rotate_key(request: web.Request) -> web.Response:
    require_admin(request)
    return ok({"api_key": await request.app[SERVICES].users.rotate_key(request.match_info["user_id"])})


@routes.delete(P + "/keys/{digest}")
async def revoke_key(request: web.Request) -> web.Response:
    require_admin(request)
    await request.app[SERVICES].users.revoke_key(request.match_info["digest"])
    return ok({"revoked": True})


@routes.post(P + "/users/{user_id}/wallets")
async def adjust_wallet(request: web.Request) -> web.Response:
    change = parse(WalletChange, await _admin_body(request))
    services = request.app[SERVICES]
    user_id = request.match_info["user_id"]
    await services.users.get(user_id)
    balances = await services.wallets.adjust(
        user_id, change.unit, change.amount, reason=change.reason, kind=change.kind
    )
    return ok({"unit": change.unit, **balances})


@routes.post(P + "/accounts")
async def add_account(request: web.Request) -> web.Response:
    spec = parse(AccountSpec, await _admin_body(request))
    return ok({"account_id": await request.app[SERVICES].accounts.add(spec)})


@routes.get(P + "/accounts")
async def list_accounts(request: web.Request) -> web.Response:
    require_admin(request)
    return ok(await request.app[SERVICES].accounts.list(request.query.get("owner") or None))


@routes.get(P + "/accounts/{account_id}")
async def get_account(request: web.Request) -> web.Response:
    require_admin(request)
    return ok(await request.app[SERVICES].accounts.get(request.match_info["account_id"]))


@routes.patch(P + "/accounts/{account_id}")
async def update_account(request: web.Request) -> web.Response:
    changes = parse(AccountChanges, await _admin_body(request))
    accounts = request.app[SERVICES].accounts
    try:
        updated = await accounts.update(request.match_info["account_id"], **changes.model_dump())
    except ValidationError as exc:  # the merged account is checked again as a whole
        raise invalid_input(exc) from exc
    return ok(updated)


@routes.post(P + "/accounts/{account_id}/pause")
async def pause_account(request: web.Request) -> web.Response:
    require_admin(request)
    await request.app[SERVICES].accounts.pause(request.match_info["account_id"])
    return ok(await request.app[SERVICES].accounts.get(request.match_info["account_id"]))


@routes.post(P + "/accounts/{account_id}/resume")
async def resume_account(request: web.Request) -> web.Response:
    require_admin(request)
    await request.app[SERVICES].accounts.resume(request.match_info["account_id"])
    return ok(await request.app[SERVICES].accounts.get(request.match_info["account_id"]))


@routes.delete(P + "/accounts/{account_id}")
async def remove_account(request: web.Request) -> web.Response:
    require_admin(request)
    await request.app[SERVICES].accounts.remove(request.match_info["account_id"])
    return ok({"removed": True})


@routes.get(P + "/pool")
async def pool(request: web.Request) -> web.Response:
    require_admin(request)
    return ok(await request.app[SERVICES].accounts.pool_status())


@routes.get(P + "/tasks/{task_id}/webhooks")
async def webhook_attempts(request: web.Request) -> web.Response:
    """Delivery attempts of one task's webhooks (§7), from the webhook outbox when it is installed."""
    require_admin(request)
    services = request.app[SERVICES]
    task_id = request.match_info["task_id"]
    dispatcher = getattr(services, "webhooks", None)
    if dispatcher is not None and hasattr(dispatcher, "list_attempts"):
        return ok(await dispatcher.list_attempts(task_id))
    list_attempts = getattr(_outbox_module(), "list_attempts", None)
    if list_attempts is None:
        return error(501, "webhook delivery records are not available in this build")
    return ok(await list_attempts(services.redis, services.keys, task_id))


def _outbox_module() -> Any:
    try:
        return importlib.import_module("taskgate.webhooks.outbox")
    except ModuleNotFoundError as exc:
        if exc.name not in ("taskgate.webhooks", "taskgate.webhooks.outbox"):
            raise
        return None
