"""``taskgate scheduler``: the fair dispatcher; any number of replicas may run at once."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("scheduler", help="run the fair dispatcher")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import functools

    from taskgate.process import run_role
    from taskgate.scheduler.runner import run_scheduler
    from taskgate.settings import Settings

    return run_role(functools.partial(run_scheduler, probes=True), Settings())
