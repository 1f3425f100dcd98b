"""The ``taskgate`` command: one sub-command per process role (DESIGN.md §2).

Each role lives in its own module exposing ``register(subparsers)``; this module only wires them
together, so the CLI forms of §4 stay in the module that owns the behaviour."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# module -> registers these sub-commands (imported lazily so `taskgate admin` stays fast)
COMMAND_MODULES = (
    "taskgate.api.command",  # api
    "taskgate.scheduler.command",  # scheduler
    "taskgate.worker.command",  # worker
    "taskgate.sim.command",  # upstream-sim
    "taskgate.dev.server",  # dev
    "taskgate.dev.demo",  # demo
    "taskgate.admin.cli",  # admin ...
    "taskgate.bench.command",  # bench ...
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taskgate", description="GoAPI-compatible generative-AI task gateway"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    try:
        code = _run(argv)
    except BrokenPipeError:  # `taskgate admin tasks list --json | head`: the reader left, no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exit's flush stays quiet
        code = 1
    sys.exit(code)


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from pydantic import ValidationError

    try:
        code = args.func(args)
    except ValidationError as exc:  # a bad TASKGATE_* setting: say which and why, no traceback
        if exc.title != "Settings":
            raise
        for err in exc.errors():
            name = "TASKGATE_" + "__".join(str(p) for p in err["loc"]).upper()
            print(f"taskgate: invalid {name}: {err['msg']}", file=sys.stderr)
        code = 2
    sys.stdout.flush()
    return int(code or 0)
