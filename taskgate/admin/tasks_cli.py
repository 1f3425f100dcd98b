"""``taskgate admin tasks ...``: the admin task tools (list, show, cancel, retry, requeue,
redeliver), the same operations as ``/admin/v1/tasks``; ``--json`` prints one JSON document."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

Action = Callable[[Any, argparse.Namespace], Awaitable[Any]]
Leaf = Callable[[argparse.ArgumentParser, Action], None]


def register_tasks(tasks: Any, leaf: Leaf) -> None:
    p = tasks.add_parser("list", help="tasks of every user, newest first, with filters")
    p.add_argument("--status", default=None, metavar="pending|processing|completed|failed")
    p.add_argument("--user", dest="user_id", default=None)
    p.add_argument("--account", dest="account_id", default=None)
    p.add_argument("--min-age", dest="min_age_s", type=float, default=0.0, help="at least this old (s)")
    p.add_argument("--max-age", dest="max_age_s", type=float, default=None, help="at most this old (s)")
    p.add_argument("--limit", type=int, default=50)
    leaf(p, _list)
    for verb, text in (
        ("show", "a task with its attempts, ledger entries and webhook attempts"),
        ("cancel", "cancel a pending (refunded) or processing task"),
        ("retry", "run a failed task again as a new task, frozen and charged like a new one"),
        ("requeue", "put a stuck task back in line (a processing one loses its slot; no new charge)"),
        ("redeliver", "queue one more webhook delivery of the task's current state"),
    ):
        p = tasks.add_parser(verb, help=text)
        p.add_argument("task_id")
        leaf(p, _verb(verb))


async def _list(s: Any, a: argparse.Namespace) -> list[dict[str, Any]]:
    from taskgate.admin.tasks import TaskAdmin, TaskFilter

    f = TaskFilter(
        status=a.status,
        user_id=a.user_id,
        account_id=a.account_id,
        min_age_s=a.min_age_s,
        max_age_s=a.max_age_s,
        limit=a.limit,
    )
    return await TaskAdmin(s).list(f)


def _verb(verb: str) -> Action:
    async def act(s: Any, a: argparse.Namespace) -> Any:
        from taskgate.admin.tasks import TaskAdmin

        result = await getattr(TaskAdmin(s), verb)(a.task_id)
        if verb == "show" and not a.json:
            return result["summary"]  # the table form; --json prints everything
        return result

    return act
