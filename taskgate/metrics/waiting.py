"""What waits and why (S10): pending tasks per wait reason and the age of the oldest pending task per
lane, read in one script from the flows and the tasks set aside. Used by ``/metrics`` and
``taskgate admin pool``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from taskgate.models import LANES_BY_PRIORITY, WaitReason
from taskgate.store import script_api
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts


@dataclass(frozen=True)
class PendingSummary:
    by_reason: dict[str, int] = field(default_factory=dict)
    oldest_age_s: dict[str, float] = field(default_factory=dict)  # lane -> seconds; 0 = none waits

    def as_dict(self) -> dict[str, object]:
        return {"pending_by_reason": self.by_reason, "oldest_pending_age_s": self.oldest_age_s}


async def pending_summary(scripts: Scripts, keys: Keys, now_ms: int | None = None) -> PendingSummary:
    raw = json.loads(await script_api.read_pending(scripts, keys, now=now_ms))
    now = int(raw["now"])
    by_reason = {str(r): 0 for r in WaitReason}
    by_reason.update({str(k): int(v) for k, v in (raw.get("by_reason") or {}).items()})
    oldest = raw.get("oldest_ms") or {}
    ages = {
        str(lane): round(max(now - int(oldest[lane]), 0) / 1000, 3) if lane in oldest else 0.0
        for lane in LANES_BY_PRIORITY
    }
    return PendingSummary(by_reason, ages)
