"""The demo's workload: who the demo users are, and the mixed tasks each submits (sim directives
steer some to fail as incorrect or transient; a few are cancelled)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from taskgate.models import Plan

CANCEL_SHARE = 0.06
OWN_CAPACITY = 4  # slots of the BYOA user's own account
MAX_PAUSE_S = 0.02  # a user's pause between two submits

PROMPTS = (
    "a lighthouse at dawn",
    "a fox in fresh snow",
    "a city made of glass",
    "an old map of the sea",
    "a robot tending a garden",
    "a jazz trio on the moon",
    "a paper boat in the rain",
)


@dataclass(frozen=True, slots=True)
class Persona:
    label: str
    plan: Plan
    share: float  # of the workload
    low_credit: bool = False
    byoa: bool = False  # own account, private service mode, auto failover to the shared pool


PERSONAS = (
    Persona("free", Plan.FREE, 0.17),
    Persona("developer", Plan.DEVELOPER, 0.23),
    Persona("premium", Plan.PREMIUM, 0.32),
    Persona("low-credit", Plan.FREE, 0.08, low_credit=True),
    Persona("byoa", Plan.DEVELOPER, 0.20, byoa=True),
)


def _mj(mode: str) -> Callable[[str], dict[str, Any]]:
    return lambda p: {
        "model": "midjourney",
        "task_type": "imagine",
        "input": {"prompt": p, "process_mode": mode},
    }


KINDS: tuple[tuple[str, int, Callable[[str], dict[str, Any]]], ...] = (
    ("mj-relax", 3, _mj("relax")),
    ("mj-fast", 4, _mj("fast")),
    ("mj-turbo", 2, _mj("turbo")),
    ("flux", 3, lambda p: {"model": "Qubico/flux1-schnell", "task_type": "txt2img", "input": {"prompt": p}}),
    (
        "kling",
        1,
        lambda p: {"model": "kling", "task_type": "video_generation", "input": {"prompt": p, "duration": 5}},
    ),
    ("suno", 1, lambda p: {"model": "music-u", "task_type": "generate_music", "input": {"prompt": p}}),
)


@dataclass(slots=True)
class PlannedTask:
    user: str
    kind: str
    body: dict[str, Any]
    cancel_after_s: float | None = None
    after_earlier_final: bool = False  # submit once every earlier task of this user has ended
    pause_s: float = 0.0  # the user's pause after submitting it (planned, so a seed repeats it)


def split_tasks(total: int) -> dict[str, int]:
    counts = {p.label: max(3, int(p.share * total)) for p in PERSONAS}
    counts["premium"] += total - sum(counts.values())
    return counts


def plan_workload(total: int, rng: random.Random) -> dict[str, list[PlannedTask]]:
    """Each persona's tasks in submission order."""
    names, weights = [k[0] for k in KINDS], [k[1] for k in KINDS]
    builders = {k[0]: k[2] for k in KINDS}
    out: dict[str, list[PlannedTask]] = {}
    for label, n in split_tasks(total).items():
        tasks = []
        for i in range(n):
            kind = rng.choices(names, weights)[0]
            prompt = f"{PROMPTS[i % len(PROMPTS)]} #{i}{_directive(rng)}"
            cancel = rng.uniform(0.05, 0.6) if rng.random() < CANCEL_SHARE else None
            tasks.append(PlannedTask(label, kind, builders[kind](prompt), cancel))
        out[label] = tasks
    # the prompt checker (B8) refuses this one at submit with 400
    out["free"].insert(
        rng.randrange(len(out["free"])),
        PlannedTask("free", "mj-fast", _mj("fast")("a nude statue in a museum")),
    )
    # a video costs far more than the low-credit user has: refused at submit with 402 (B1)
    out["low-credit"].append(PlannedTask("low-credit", "kling", KINDS[4][2]("a very long river")))
    # S6: once its first (plain) tasks ran on its own account, this one gets that account banned upstream
    byoa, at = out["byoa"], min(OWN_CAPACITY, len(out["byoa"]))  # no overflow to the pool before the ban
    for i, planned in enumerate(byoa[:at]):
        planned.body = KINDS[i % 3][2](PROMPTS[i % len(PROMPTS)])
        planned.kind, planned.cancel_after_s = KINDS[i % 3][0], None
    banned = _mj("fast")("a storm over the harbour [sim duration=0.3 outcome=banned]")
    byoa.insert(at, PlannedTask("byoa", "mj-fast", banned, after_earlier_final=True))
    # drawn here, not while the users submit concurrently: one shared generator read in whatever
    # order the submitters interleave would not repeat with the seed
    for tasks in out.values():
        for planned in tasks:
            planned.pause_s = rng.uniform(0, MAX_PAUSE_S)
    return out


def _directive(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.08:
        return " [sim duration=0.3 outcome=incorrect]"
    if roll < 0.13:
        return " [sim duration=0.2 outcome=transient]"
    if roll < 0.40:
        return f" [sim duration={rng.uniform(0.2, 1.2):.2f}]"
    return ""


def wallets_for(persona: Persona, n_tasks: int) -> dict[str, int]:
    if persona.low_credit:  # a few tasks fit; the rest are refused with 402
        return {"mj_quota": 40, "credits": 15, "suno_quota": 10}
    return {"mj_quota": 40 * n_tasks + 200, "credits": 150 * n_tasks + 500, "suno_quota": 12 * n_tasks + 50}


# --- seeding -------------------------------------------------------------------------------------
