"""``taskgate admin ...``: the admin API's operations, run directly against TASKGATE_REDIS_URL.

These forms and their ``--json`` output are used by scripts (DESIGN.md §4): extend, never rename.
Exit codes: 0 success, 2 bad input (message on stderr), 1 other failures."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import SecretStr, ValidationError

from taskgate.admin.tasks_cli import register_tasks
from taskgate.errors import RedisUnavailable, TaskgateError

Action = Callable[[Any, argparse.Namespace], Awaitable[Any]]


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def register(sub: Any) -> None:
    admin = sub.add_parser("admin", help="users, keys, wallets and accounts").add_subparsers(
        dest="admin_group", required=True
    )
    _register_users(
        admin.add_parser("users", help="customers, API keys, wallets").add_subparsers(
            dest="admin_command", required=True
        )
    )
    _register_accounts(
        admin.add_parser("accounts", help="upstream accounts").add_subparsers(
            dest="admin_command", required=True
        )
    )
    _leaf(admin.add_parser("pool", help="shared pool status"), lambda s, a: s.accounts.pool_status())
    register_tasks(
        admin.add_parser(
            "tasks", help="any task: list, show, cancel, retry, requeue, redeliver"
        ).add_subparsers(dest="admin_command", required=True),
        _leaf,
    )


def _register_users(users: Any) -> None:
    p = users.add_parser("create", help="create a user; prints its API key once")
    # plans are data (the catalogue), so the name is checked there: free|developer|premium|enterprise
    p.add_argument("--plan", required=True, metavar="free|developer|premium|enterprise")
    p.add_argument("--credits", type=int, default=0)
    p.add_argument("--mj-quota", type=int, default=0)
    p.add_argument("--no-failover", action="store_true")
    p.add_argument("--service-mode", default="", choices=["", "public", "private"])
    _leaf(p, _users_create)
    _leaf(users.add_parser("list"), lambda s, a: s.users.list_users())
    p = users.add_parser("show")
    p.add_argument("user_id")
    _leaf(p, lambda s, a: s.users.show(a.user_id))
    p = users.add_parser("update", help="change plan, failover, service mode or endpoints")
    p.add_argument("user_id")
    p.add_argument("--plan", default=None)
    p.add_argument("--failover", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--service-mode", default=None, choices=["", "public", "private"])
    p.add_argument("--webhook-endpoint", default=None)
    p.add_argument("--notify-endpoint", default=None)
    _leaf(p, _users_update)
    p = users.add_parser("topup", help="top up (or with --kind adjust, correct) a wallet")
    p.add_argument("user_id")
    p.add_argument("--unit", default="credits")
    p.add_argument("--amount", type=int, required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--kind", default="top_up", choices=["top_up", "adjust"])
    _leaf(p, _users_topup)
    p = users.add_parser("rotate-key", help="replace every key of the user by a new one")
    p.add_argument("user_id")
    _leaf(p, lambda s, a: _rotate(s, a.user_id))
    p = users.add_parser("revoke-key", help="revoke one key (the key itself or its SHA-256 digest)")
    p.add_argument("key_or_digest")
    _leaf(p, _revoke)


def _register_accounts(accounts: Any) -> None:
    p = accounts.add_parser("add", help="add a shared or a user's (BYOA) account")
    p.add_argument("--owner", default="shared")
    p.add_argument("--provider", default="sim", choices=["sim", "goapi"])
    p.add_argument("--capacity", type=int, required=True)
    p.add_argument("--models", type=_csv, default=None)
    p.add_argument("--modes", type=_csv, default=None)
    p.add_argument("--priority", type=int, default=0)
    p.add_argument("--weight", type=int, default=1)
    p.add_argument("--daily-cap", type=int, default=0)
    p.add_argument("--backup", action="store_true")
    p.add_argument("--base-url", default=None, help="default for sim: the simulator (TASKGATE_SIM_BASE_URL)")
    p.add_argument("--api-key", default="", help="default for sim: its own key, which the simulator accepts")
    _leaf(p, _accounts_add)
    p = accounts.add_parser("update", help="change an account; a new --api-key lifts credentials_rejected")
    p.add_argument("account_id")
    p.add_argument("--api-key", default=None)
    p.add_argument("--base-url", default=None)
    p.add_argument("--capacity", type=int, default=None)
    p.add_argument("--models", type=_csv, default=None)
    p.add_argument("--modes", type=_csv, default=None)
    p.add_argument("--priority", type=int, default=None)
    p.add_argument("--weight", type=int, default=None)
    _leaf(p, _accounts_update)
    p = accounts.add_parser("list")
    p.add_argument("--owner", default=None)
    _leaf(p, lambda s, a: s.accounts.list(a.owner))
    p = accounts.add_parser("show")
    p.add_argument("account_id")
    _leaf(p, lambda s, a: s.accounts.get(a.account_id))
    for verb in ("pause", "resume", "remove"):
        p = accounts.add_parser(verb)
        p.add_argument("account_id")
        _leaf(p, _account_verb(verb))


def _leaf(parser: argparse.ArgumentParser, action: Action) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=lambda args: _run(action, args))


async def _users_create(s: Any, a: argparse.Namespace) -> dict[str, str]:
    wallets = {k: v for k, v in (("credits", a.credits), ("mj_quota", a.mj_quota)) if v}
    user_id, api_key = await s.users.create(
        a.plan, wallets=wallets, failover=not a.no_failover, service_mode=a.service_mode
    )
    return {"user_id": user_id, "api_key": api_key}


async def _users_topup(s: Any, a: argparse.Namespace) -> dict[str, Any]:
    await s.users.get(a.user_id)
    balances = await s.wallets.adjust(a.user_id, a.unit, a.amount, reason=a.reason, kind=a.kind)
    return {"user_id": a.user_id, "unit": a.unit, **balances}


async def _users_update(s: Any, a: argparse.Namespace) -> dict[str, Any]:
    await s.users.update(
        a.user_id,
        plan=a.plan,
        failover=a.failover,
        service_mode=a.service_mode,
        webhook_endpoint=a.webhook_endpoint,
        notify_endpoint=a.notify_endpoint,
    )
    return dict(await s.users.show(a.user_id))


async def _revoke(s: Any, a: argparse.Namespace) -> dict[str, Any]:
    await s.users.revoke_key(a.key_or_digest)
    return {"revoked": True}


async def _rotate(s: Any, user_id: str) -> dict[str, str]:
    return {"user_id": user_id, "api_key": await s.users.rotate_key(user_id)}


async def _accounts_add(s: Any, a: argparse.Namespace) -> dict[str, str]:
    from taskgate.pool.registry import AccountSpec

    fields: dict[str, Any] = {
        "owner": a.owner,
        "provider": a.provider,
        "capacity": a.capacity,
        "priority": a.priority,
        "weight": a.weight,
        "daily_cap": a.daily_cap,
        "backup": a.backup,
        "api_key": SecretStr(a.api_key),
        "base_url": a.base_url or "",
    }
    if a.models:
        fields["models"] = a.models
    if a.modes:
        fields["modes"] = a.modes
    return {"account_id": await s.accounts.add(AccountSpec(**fields))}


async def _accounts_update(s: Any, a: argparse.Namespace) -> dict[str, Any]:
    names = ("base_url", "capacity", "models", "modes", "priority", "weight")
    changes = {name: getattr(a, name) for name in names}
    if a.api_key is not None:
        changes["api_key"] = SecretStr(a.api_key)
    return dict(await s.accounts.update(a.account_id, **changes))


def _account_verb(verb: str) -> Action:
    async def act(s: Any, a: argparse.Namespace) -> dict[str, Any]:
        await getattr(s.accounts, verb)(a.account_id)
        return {"account_id": a.account_id, verb: True}

    return act


def _run(action: Action, args: argparse.Namespace) -> int:
    from taskgate.logging import configure_logging
    from taskgate.services import build_services
    from taskgate.settings import Settings

    settings = Settings()
    configure_logging(settings.log_profile, "WARNING")  # stdout is for results only

    async def go() -> Any:
        try:  # a CLI waits for Redis (a failover) for a bounded time only
            services = await asyncio.wait_for(build_services(settings, "admin"), settings.redis_retry_s)
        except TimeoutError as exc:
            raise RedisUnavailable(f"no Redis master answered within {settings.redis_retry_s:g} s") from exc
        try:
            return await action(services, args)
        finally:
            await services.close()

    try:
        result = asyncio.run(go())
    except (TaskgateError, ValidationError) as exc:
        message = exc.message if isinstance(exc, TaskgateError) else _validation_message(exc)
        print(f"error: {message}", file=sys.stderr)
        return 2 if getattr(exc, "status", 400) < 500 else 1
    except Exception as exc:  # connection refused and the like
        print(f"error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    _print(result, args.json)
    return 0


def _validation_message(exc: ValidationError) -> str:
    from taskgate.catalogue.input_fields import first_error

    loc, reason = first_error(exc)
    return f"invalid {'.'.join(loc) or 'value'}: {reason}"


def _print(result: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    rows = result if isinstance(result, list) else [result]
    if not rows:
        print("(none)")
        return
    table = Table()
    columns = list(rows[0].keys())
    for c in columns:
        table.add_column(str(c), overflow="fold")
    for row in rows:
        table.add_row(
            *[
                json.dumps(row.get(c), default=str)
                if isinstance(row.get(c), dict | list)
                else str(row.get(c))
                for c in columns
            ]
        )
    Console(width=200 if not sys.stdout.isatty() else None).print(table)
