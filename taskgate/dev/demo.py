"""``taskgate demo``: the whole system working for real, in one command (DESIGN.md §2).

It starts ``taskgate dev`` in this process under a fresh key prefix, seeds users on every plan and a
pool of simulated upstream accounts through the services, submits a mixed workload through the HTTP
API (Midjourney relax/fast/turbo, Flux, Kling, Suno; some incorrect, transient, cancelled; a BYOA
user whose own account gets banned mid-run so its later tasks fail over to the shared pool), samples
every user's concurrency while tasks run, waits until every task is final, then prints a report
(``demo_report``) and writes it as JSON and an HTML chart. Exit 0 only when every task ended and
every cap and the ledger held."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from pydantic import SecretStr
from rich.console import Console

from taskgate.dev import demo_report as report
from taskgate.dev.demo_report import AccountRun, UserRun
from taskgate.dev.demo_workload import (
    OWN_CAPACITY,
    PERSONAS,
    Persona,
    PlannedTask,
    plan_workload,
    wallets_for,
)
from taskgate.models import TERMINAL_STATUSES
from taskgate.pool.registry import AccountSpec
from taskgate.settings import Settings
from taskgate.store.redis_launcher import free_port

if TYPE_CHECKING:
    from taskgate.services import Services

DEFAULT_TASKS = 150
MIN_TASKS = 15
DEFAULT_TIMEOUT_S = 110.0
SAMPLE_INTERVAL_S = 0.05  # concurrency sampling period
STATUS_INTERVAL_S = 0.2  # progress refresh period
HTTP_CONCURRENCY = 16
SHARED_ACCOUNTS, SHARED_CAPACITY = 8, 10
FINAL = frozenset(str(s) for s in TERMINAL_STATUSES)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    tasks: int = DEFAULT_TASKS
    port: int | None = None
    sim_port: int | None = None
    json: bool = False
    seed: int = 7
    timeout_s: float = DEFAULT_TIMEOUT_S
    report_dir: Path = Path("demo-report")
    keep_data: bool = False


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
            await asyncio.sleep(planned.pause_s)

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
    driver: Driver, board: report.ProgressBoard, submitting: asyncio.Task[None], deadline: float
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
    opts: DemoOptions,
    console: Console,
) -> list[dict[str, str]]:
    board = report.ProgressBoard(console, list(driver.runs.values()))
    done = asyncio.Event()
    sampler = asyncio.create_task(driver.sample(done))
    deadline = time.monotonic() + opts.timeout_s
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


# --- the system under the demo --------------------------------------------------------------------


def demo_settings(base: Settings, *, prefix: str, redis_url: str, api_port: int, sim_port: int) -> Settings:
    return base.model_copy(
        update={
            "key_prefix": prefix,
            "redis_url": redis_url,
            "api_host": "127.0.0.1",
            "api_port": api_port,
            "sim_host": "127.0.0.1",
            "sim_port": sim_port,
            "webhook_allow_private": True,
            "sim_latency_turbo_s": 0.2,
            "sim_latency_fast_s": 0.5,
            "sim_latency_relax_s": 1.0,
            "sim_failure_rate": 0.0,
            "sim_incorrect_rate": 0.0,
            "sim_captcha_rate": 0.0,
            "sim_ban_rate": 0.0,
            "upstream_poll_interval_s": 0.05,
            "sweep_interval_s": 0.5,
            "log_level": demo_log_level(base),
        }
    )


def demo_log_level(settings: Settings) -> str:
    """The report is the output: only errors are logged, unless TASKGATE_LOG_LEVEL asks otherwise."""
    return settings.log_level if "log_level" in settings.model_fields_set else "ERROR"


@contextlib.asynccontextmanager
async def running_system(
    settings: Settings, *, keep_data: bool = True
) -> AsyncIterator[tuple[Settings, str]]:
    """``taskgate dev`` in this process; yields the settings it runs with and where Redis is.
    Without ``keep_data`` the key prefix is deleted once dev has stopped (before, its scheduler
    could write a key again after the deletion)."""
    from taskgate.dev.server import PrivateRedis, run_dev, safe_url

    async with PrivateRedis(settings) as redis:
        settings = settings.model_copy(update={"redis_url": redis.url})
        stop, ready = asyncio.Event(), asyncio.Event()
        dev = asyncio.create_task(run_dev(settings, stop=stop, ready=ready))
        started = asyncio.create_task(ready.wait())
        await asyncio.wait({dev, started}, return_when=asyncio.FIRST_COMPLETED)
        if dev.done():
            started.cancel()
            dev.result()
            raise RuntimeError("taskgate dev stopped before it was ready")
        try:
            where = safe_url(redis.url)
            yield settings, (f"a private redis-server at {where}" if redis.private else where)
        finally:
            stop.set()
            await dev
            if not keep_data:
                await delete_prefix(settings)


async def delete_prefix(settings: Settings) -> None:
    from taskgate.store.connection import close_sentinels, redis_client
    from taskgate.store.keys import Keys

    redis = redis_client(settings)
    try:
        async for key in redis.scan_iter(match=Keys(settings.key_prefix).pattern(), count=1000):
            await redis.delete(key)
    finally:
        await redis.aclose()
        await close_sentinels(redis)


async def run_demo(base: Settings, opts: DemoOptions, console: Console) -> dict[str, Any]:
    """The whole demo; returns the summary (``summary["ok"]`` decides the exit code)."""
    rng = random.Random(opts.seed)
    prefix = f"demo-{secrets.token_hex(4)}"
    api_port, sim_port = free_port(opts.port or base.api_port), free_port(opts.sim_port or base.sim_port)
    wanted = demo_settings(
        base, prefix=prefix, redis_url=base.redis_url, api_port=api_port, sim_port=sim_port
    ).model_copy(update={"sim_seed": opts.seed})  # the simulator's jitter repeats with --seed too
    from taskgate.services import build_services

    async with running_system(wanted, keep_data=opts.keep_data) as (settings, redis_note):
        console.print(
            f"taskgate dev: API http://127.0.0.1:{api_port}, simulator :{sim_port}, "
            f"Redis {redis_note}, key prefix {prefix}"
        )
        services = await build_services(settings)
        try:
            return await _run_with(services, settings, opts, console, rng, redis_note)
        finally:
            await services.close()


async def _run_with(
    services: Services,
    settings: Settings,
    opts: DemoOptions,
    console: Console,
    rng: random.Random,
    redis_note: str,
) -> dict[str, Any]:
    workload = plan_workload(opts.tasks, rng)
    counts = {label: len(tasks) for label, tasks in workload.items()}
    users, accounts = await seed(services, f"http://127.0.0.1:{settings.sim_port}", counts)
    console.print(
        f"seeded {len(users)} users and {len(accounts)} simulated accounts; "
        f"submitting {sum(counts.values())} tasks"
    )
    runs = {
        u.persona.label: UserRun(
            u.persona.label, u.user_id, str(u.persona.plan), u.cap, u.persona.byoa, counts[u.persona.label]
        )
        for u in users
    }
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        api = Api(session, f"http://127.0.0.1:{settings.api_port}")
        driver = Driver(services, api, users, accounts, runs)
        stuck = await drive(driver, workload, opts, console)
        elapsed = time.monotonic() - started
        await driver.collect()
    data = report.DemoData(
        opts.seed,
        opts.tasks,
        settings.key_prefix,
        redis_note,
        elapsed,
        list(runs.values()),
        accounts,
        stuck,
        driver.problems,
    )
    return report.build_summary(data)


# --- the command -----------------------------------------------------------------------------------


def _tasks(value: str) -> int:
    n = int(value)
    if n < MIN_TASKS:
        raise argparse.ArgumentTypeError(f"at least {MIN_TASKS} tasks")
    return n


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("demo", help="run dev with seeded users and a mixed workload, then report")
    p.add_argument("--tasks", type=_tasks, default=DEFAULT_TASKS, help="tasks to submit (%(default)s)")
    p.add_argument("--port", type=int, default=None, help="API port (default TASKGATE_API_PORT, else free)")
    p.add_argument("--sim-port", type=int, default=None, help="simulator port (default TASKGATE_SIM_PORT)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    p.add_argument("--seed", type=int, default=7, help="workload random seed (default %(default)s)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds to wait for the end")
    p.add_argument("--report-dir", type=Path, default=Path("demo-report"), help="where report files go")
    p.add_argument("--keep-data", action="store_true", help="leave the demo's keys in Redis")
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    settings = Settings()
    from taskgate.logging import configure_logging

    configure_logging(settings.log_profile, demo_log_level(settings))
    opts = DemoOptions(
        tasks=args.tasks,
        port=args.port,
        sim_port=args.sim_port,
        json=args.json,
        seed=args.seed,
        timeout_s=args.timeout,
        report_dir=args.report_dir,
        keep_data=args.keep_data,
    )
    console = Console(stderr=opts.json)
    from taskgate.dev.server import DevStartFailed, RedisUnavailable

    try:
        summary = asyncio.run(run_demo(settings, opts, console))
    except (RedisUnavailable, DevStartFailed) as exc:
        console.print(f"taskgate demo: {exc}")
        return 2
    json_path, html_path = report.write_report(summary, opts.report_dir)
    summary["report"] = {"json": str(json_path), "html": str(html_path)}
    report.render(summary, console)
    console.print(f"report: {json_path} and {html_path}")
    if opts.json:
        print(json.dumps(summary))
    return 0 if summary["ok"] else 1
