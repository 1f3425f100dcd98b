"""The ``taskgate demo``'s driver: seeding users and simulated accounts, submitting the workload
over the HTTP API, sampling every user's concurrency while tasks run, waiting until every task is
final, then collecting what the report needs (``demo_report``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from pydantic import SecretStr
from rich.console import Console

from taskgate.dev import demo_report as report
from taskgate.dev.demo_render import ProgressBoard
from taskgate.dev.demo_report import AccountRun, UserRun
from taskgate.dev.demo_workload import OWN_CAPACITY, PERSONAS, Persona, PlannedTask, wallets_for
from taskgate.models import TERMINAL_STATUSES
from taskgate.pool.registry import AccountSpec

if TYPE_CHECKING:
    from taskgate.services import Services

SAMPLE_INTERVAL_S = 0.05  # concurrency sampling period
STATUS_INTERVAL_S = 0.2  # progress refresh period
HTTP_CONCURRENCY = 16
SHARED_ACCOUNTS, SHARED_CAPACITY = 8, 10
FINAL = frozenset(str(s) for s in TERMINAL_STATUSES)


@dataclass(slots=True)
class Seeded:
    persona: Persona
    user_id: str
    api_key: str
    cap: int


# --- the workload --------------------------------------------------------------------------------


async def seed(
    services: Services, sim_url: str, counts: dict[str, int]
) -> tuple[list[Seeded], list[AccountRun]]:
    users, accounts = [], []
    tag = services.keys.prefix
    for persona in PERSONAS:
        user_id, api_key = await services.users.create(
            str(persona.plan),
            wallets=wallets_for(persona, counts[persona.label]),
            failover=persona.byoa,
            service_mode="private" if persona.byoa else "",
            name=f"demo {persona.label}",
        )
        cap = services.catalogue.plan(str(persona.plan)).concurrency
        users.append(Seeded(persona, user_id, api_key, cap))
        if persona.byoa:
            spec = AccountSpec(
                owner=user_id,
                provider="sim",
                base_url=sim_url,
                capacity=OWN_CAPACITY,
                api_key=SecretStr(f"{tag}-{persona.label}-own"),
            )
            accounts.append(AccountRun(await services.accounts.add(spec), persona.label, OWN_CAPACITY, 0, ""))
    for i in range(SHARED_ACCOUNTS):
        spec = AccountSpec(
            owner="shared",
            provider="sim",
            base_url=sim_url,
            capacity=SHARED_CAPACITY,
            api_key=SecretStr(f"{tag}-shared-{i}"),
        )
        accounts.append(AccountRun(await services.accounts.add(spec), "shared", SHARED_CAPACITY, 0, ""))
    return users, accounts


# --- driving the workload over HTTP ----------------------------------------------------------------


class Api:
    """The §4 task API over aiohttp: (HTTP status, envelope)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session, self.base_url = session, base_url
        self.limit = asyncio.Semaphore(HTTP_CONCURRENCY)

    async def call(
        self, method: str, path: str, api_key: str, body: Any = None
    ) -> tuple[int, dict[str, Any]]:
        async with (
            self.limit,
            self.session.request(
                method, self.base_url + path, headers={"x-api-key": api_key}, json=body
            ) as resp,
        ):
            payload = await resp.json(content_type=None)
            return resp.status, payload if isinstance(payload, dict) else {}


@dataclass
class Driver:
    services: Services
    api: Api
    users: list[Seeded]
    accounts: list[AccountRun]
    runs: dict[str, UserRun]
    accepted: dict[str, str] = field(default_factory=dict)  # task id -> user label
    problems: list[str] = field(default_factory=list)
    running: dict[str, int] = field(default_factory=dict)  # user label -> PPU tasks processing now
    background: list[asyncio.Task[None]] = field(default_factory=list)

    async def submit_all(self, workload: dict[str, list[PlannedTask]]) -> None:
        by_label = {u.persona.label: u for u in self.users}
        await asyncio.gather(
            *(self._submit_user(by_label[label], tasks) for label, tasks in workload.items())
        )

    async def _submit_user(self, user: Seeded, tasks: list[PlannedTask]) -> None:
        run = self.runs[user.persona.label]
        for planned in tasks:
            if planned.after_earlier_final:
                await self._until_final(run.label)
            try:
                status, body = await self.api.call("POST", "/api/v1/task", user.api_key, planned.body)
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.problems.append(f"{run.label}: POST /api/v1/task failed: {exc!r}")
                continue
            if status == 200 and body.get("code") == 200:
                task_id = body["data"]["task_id"]
                self.accepted[task_id] = run.label
                if planned.cancel_after_s is not None:
                    self.background.append(asyncio.create_task(self._cancel_later(user, task_id, planned)))
            else:
                run.refused[status] += 1
                if status not in report.REFUSED_EXPECTED:
                    self.problems.append(
                        f"{run.label}: POST /api/v1/task answered {status}: {body.get('message')}"
                    )
            await asyncio.sleep(planned.pause_s)  # planned with the workload: a seed repeats it

    async def _until_final(self, label: str) -> None:
        while any(s not in FINAL for t, s in (await self.statuses()).items() if self.accepted[t] == label):
            await asyncio.sleep(STATUS_INTERVAL_S)

    async def _cancel_later(self, user: Seeded, task_id: str, planned: PlannedTask) -> None:
        await asyncio.sleep(planned.cancel_after_s or 0)
        try:
            status, body = await self.api.call("POST", f"/api/v1/task/{task_id}/cancel", user.api_key)
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, body = 0, {"message": repr(exc)}
        self.runs[user.persona.label].cancels += 1
        if status != 200:
            self.problems.append(
                f"{user.persona.label}: cancel of {task_id} answered {status}: {body.get('message')}"
            )

    async def sample(self, done: asyncio.Event) -> None:
        """Every SAMPLE_INTERVAL_S: PPU tasks processing per user, tasks per account; keep the peaks."""
        redis, keys = self.services.redis, self.services.keys
        while not done.is_set():
            pipe = redis.pipeline(transaction=False)
            for user in self.users:
                pipe.zcard(keys.user_leases(user.user_id))
            for account in self.accounts:
                pipe.zcard(keys.account_leases(account.account_id))
            values = [int(v) for v in await pipe.execute()]
            for user, value in zip(self.users, values[: len(self.users)], strict=True):
                run = self.runs[user.persona.label]
                run.peak = max(run.peak, value)
                self.running[run.label] = value
            for account, value in zip(self.accounts, values[len(self.users) :], strict=True):
                account.peak = max(account.peak, value)
            await asyncio.sleep(SAMPLE_INTERVAL_S)

    async def statuses(self) -> dict[str, str]:
        ids = list(self.accepted)
        pipe = self.services.redis.pipeline(transaction=False)
        for task_id in ids:
            pipe.hget(self.services.keys.task(task_id), "status")
        return {t: (s.decode() if s else "missing") for t, s in zip(ids, await pipe.execute(), strict=True)}

    async def collect(self) -> None:
        """Final task objects over HTTP; failover flags, ledgers, wallets and account states from Redis."""
        keys_by_label = {u.persona.label: u.api_key for u in self.users}

        async def fetch(task_id: str, label: str) -> None:
            status, body = await self.api.call("GET", f"/api/v1/task/{task_id}", keys_by_label[label])
            if status == 200 and isinstance(body.get("data"), dict):
                self.runs[label].views.append(body["data"])
            else:
                self.problems.append(f"{label}: GET /api/v1/task/{task_id} answered {status}")

        await asyncio.gather(*(fetch(t, label) for t, label in self.accepted.items()))
        pipe = self.services.redis.pipeline(transaction=False)
        ids = list(self.accepted)
        for task_id in ids:
            pipe.hget(self.services.keys.task(task_id), "failover")
        for task_id, flag in zip(ids, await pipe.execute(), strict=True):
            if flag == b"1":
                self.runs[self.accepted[task_id]].failover_ids.add(task_id)
        for user in self.users:
            run = self.runs[user.persona.label]
            run.ledger = await self.services.wallets.ledger(user.user_id, count=1_000_000)
            run.balances = await self.services.wallets.balances(user.user_id)
        for account in self.accounts:
            account.state = str((await self.services.accounts.get(account.account_id))["state"])


# --- progress and waiting --------------------------------------------------------------------------


async def wait_until_final(
    driver: Driver, board: ProgressBoard, submitting: asyncio.Task[None], deadline: float
) -> list[dict[str, str]]:
    """Refresh the bars until every accepted task is final; past the deadline, the stuck ones."""
    while True:
        statuses = await driver.statuses()
        board.update(
            list(driver.runs.values()),
            Counter(driver.accepted[t] for t, s in statuses.items() if s in FINAL),
            driver.running,
        )
        waiting = {t: s for t, s in statuses.items() if s not in FINAL}
        if submitting.done() and not waiting:
            return []
        if time.monotonic() > deadline:
            return [
                {"task_id": t, "user": driver.accepted[t], "status": s} for t, s in sorted(waiting.items())
            ]
        await asyncio.sleep(STATUS_INTERVAL_S)


async def drive(
    driver: Driver,
    workload: dict[str, list[PlannedTask]],
    timeout_s: float,
    console: Console,
) -> list[dict[str, str]]:
    board = ProgressBoard(console, list(driver.runs.values()))
    done = asyncio.Event()
    sampler = asyncio.create_task(driver.sample(done))
    deadline = time.monotonic() + timeout_s
    with board.progress:
        submitting = asyncio.create_task(driver.submit_all(workload))
        try:
            stuck = await wait_until_final(driver, board, submitting, deadline)
        finally:
            done.set()
            if not submitting.done():
                submitting.cancel()
            for task in (submitting, sampler, *driver.background):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    return stuck
