"""Prompt directives that steer one simulated task (DESIGN.md §9).

Anywhere in ``input.prompt``::

    [sim duration=0.2 outcome=incorrect]

- ``duration=SECONDS`` — how long the job runs (overrides the mode's latency); ``0 <= SECONDS <= 3600``.
- ``outcome=completed|incorrect|transient|captcha|banned`` — how the job ends. ``incorrect`` and
  ``transient`` fail the job with that kind; ``captcha`` and ``banned`` fail it with that kind and
  flip the submitting account's behaviour, so later submits on that api key are refused. The
  event strikes once per task (idempotency key): a retry of the task on another account completes.

Parsing is forgiving: the tag is case-insensitive, unknown keys and bad values are ignored, and when
a prompt holds several tags, later values override earlier ones."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MAX_DURATION_S = 3600.0
TAG = re.compile(r"\[\s*sim\b([^\]]*)\]", re.IGNORECASE)
PAIR = re.compile(r"([A-Za-z_]+)\s*=\s*([^\s\]]+)")


class SimOutcome(StrEnum):
    COMPLETED = "completed"
    INCORRECT = "incorrect"
    TRANSIENT = "transient"
    CAPTCHA = "captcha"
    BANNED = "banned"


ACCOUNT_FLIPPING = frozenset({SimOutcome.CAPTCHA, SimOutcome.BANNED})


@dataclass(frozen=True)
class Directive:
    duration_s: float | None = None
    outcome: SimOutcome | None = None


def parse_directive(prompt: Any) -> Directive:
    """The merged directive of every ``[sim ...]`` tag in ``prompt``; empty when there is none."""
    if not isinstance(prompt, str):
        return Directive()
    duration: float | None = None
    outcome: SimOutcome | None = None
    for tag in TAG.finditer(prompt):
        for key, value in PAIR.findall(tag.group(1)):
            match key.lower():
                case "duration":
                    duration = _duration(value, duration)
                case "outcome":
                    outcome = _outcome(value, outcome)
                case _:
                    pass  # unknown keys are ignored by design
    return Directive(duration_s=duration, outcome=outcome)


def directive_of(task_input: Any) -> Directive:
    """The directive in a task input's ``prompt`` (inputs without a prompt have none)."""
    if not isinstance(task_input, dict):
        return Directive()
    return parse_directive(task_input.get("prompt"))


def _duration(value: str, current: float | None) -> float | None:
    try:
        seconds = float(value.rstrip("s"))
    except ValueError:
        return current
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_DURATION_S:
        return current
    return seconds


def _outcome(value: str, current: SimOutcome | None) -> SimOutcome | None:
    try:
        return SimOutcome(value.lower())
    except ValueError:
        return current
