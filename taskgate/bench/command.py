"""``taskgate bench <name>``: one sub-command per benchmark module.

Each module in BENCHMARKS exposes ``add_arguments(parser)`` and ``run(args) -> int``; adding a
benchmark is one line here. With ``--json`` a benchmark prints one JSON object on stdout."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

BENCHMARKS = {
    "scheduler": "taskgate.bench.scheduler",
    "throughput": "taskgate.bench.throughput",
    "chaos": "taskgate.bench.chaos",
    "ha": "taskgate.bench.ha",
    "pipeline": "taskgate.bench.pipeline",
    "inflight": "taskgate.bench.inflight",
    "api": "taskgate.bench.api",
    "webhooks": "taskgate.bench.webhooks",
}


def register(sub: Any) -> None:
    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="bench_name", required=True)
    for name, module_name in BENCHMARKS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # not part of this build
        parser: argparse.ArgumentParser = bench.add_parser(name, help=(module.__doc__ or "").split("\n")[0])
        parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        module.add_arguments(parser)
        parser.set_defaults(func=module.run)
