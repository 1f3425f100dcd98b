"""The composition root: every long-lived object a process needs, built once from Settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.asyncio import Redis

from taskgate.billing.wallets import WalletService
from taskgate.catalogue.spec import Catalogue
from taskgate.pool.registry import AccountRegistry
from taskgate.settings import Settings
from taskgate.store.connection import create_redis
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts
from taskgate.tasks.service import TaskService
from taskgate.users.service import UserService


@dataclass(slots=True)
class Services:
    settings: Settings
    redis: Redis
    keys: Keys
    scripts: Scripts
    catalogue: Catalogue
    wallets: WalletService
    users: UserService
    accounts: AccountRegistry
    tasks: TaskService

    async def close(self) -> None:
        await self.redis.aclose()


def assemble(settings: Settings, redis: Redis) -> Services:
    keys = Keys(settings.key_prefix)
    catalogue = Catalogue.load(settings.catalogue_path)
    scripts = Scripts.for_settings(redis, settings, catalogue)
    wallets = WalletService(redis, scripts, keys, catalogue)
    users = UserService(
        redis,
        keys,
        catalogue,
        wallets,
        settings.plan_weights,
        allow_private_webhooks=settings.webhook_allow_private,
    )
    accounts = AccountRegistry(redis, scripts, keys, settings, catalogue)
    tasks = TaskService(redis, scripts, keys, settings, catalogue, users)
    return Services(settings, redis, keys, scripts, catalogue, wallets, users, accounts, tasks)


async def build_services(
    settings: Settings, what: str = "taskgate", stop: asyncio.Event | None = None
) -> Services:
    """Services on a connected Redis; waits for Redis (one log line) instead of failing."""
    return assemble(settings, await create_redis(settings, what, stop))
