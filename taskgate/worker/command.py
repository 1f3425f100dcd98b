"""``taskgate worker``: an arq worker running dispatched tasks and delivering webhooks."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("worker", help="run an arq worker")
    parser.add_argument(
        "--max-jobs",
        type=int,
        default=None,
        help="arq jobs at once: attempts being submitted (default from settings)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import functools

    from taskgate.process import run_role
    from taskgate.settings import Settings
    from taskgate.worker.runner import run_worker

    settings = Settings()
    if args.max_jobs:
        settings = settings.model_copy(update={"worker_max_jobs": args.max_jobs})
    return run_role(functools.partial(run_worker, probes=True), settings)
