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
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from rich.console import Console

from taskgate.dev import demo_render as render
from taskgate.dev import demo_report as report
from taskgate.dev.demo_driver import Api, Driver, drive, seed
from taskgate.dev.demo_report import UserRun
from taskgate.dev.demo_workload import plan_workload
from taskgate.settings import Settings
from taskgate.store.redis_launcher import free_port

if TYPE_CHECKING:
    from taskgate.services import Services

DEFAULT_TASKS = 150
MIN_TASKS = 15
DEFAULT_TIMEOUT_S = 110.0


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
        stuck = await drive(driver, workload, opts.timeout_s, console)
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
    json_path, html_path = render.write_report(summary, opts.report_dir)
    summary["report"] = {"json": str(json_path), "html": str(html_path)}
    render.render(summary, console)
    console.print(f"report: {json_path} and {html_path}")
    if opts.json:
        print(json.dumps(summary))
    return 0 if summary["ok"] else 1
