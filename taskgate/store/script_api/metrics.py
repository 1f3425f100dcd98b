"""Typed calls of the metrics scripts (metrics/lua): JSON answers the callers parse."""

from __future__ import annotations

from collections.abc import Sequence

from taskgate.store.keys import Keys
from taskgate.store.script_api.typed import now_arg, typed
from taskgate.store.scripts import Scripts


@typed("count_pending")
async def count_pending(s: Scripts, k: Keys, *, flows: Sequence[str]) -> str:
    r = await s.call("count_pending", keys=[k.flow_meta()], args=[k.base, *flows])
    return str(r[1])


@typed("read_cluster")
async def read_cluster(s: Scripts, k: Keys, *, now: int | None = None) -> str:
    r = await s.call(
        "read_cluster", keys=[k.leases(), k.accounts(), k.webhook_outbox()], args=[k.base, now_arg(now)]
    )
    return str(r[1])


@typed("sum_frozen")
async def sum_frozen(s: Scripts, k: Keys, *, user_ids: Sequence[str]) -> str:
    r = await s.call("sum_frozen", keys=[k.users()], args=[k.base, *user_ids])
    return str(r[1])
