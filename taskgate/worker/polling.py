"""Adaptive polling of upstream jobs, for upstreams that cannot call back.

An attempt's polls follow the expected duration of its model and mode (``data/durations.toml``;
for the simulator, the worker's ``sim_latency_*_s`` settings): the first poll comes at half the
expected duration, later ones every tenth of max(expected, time waited so far), bounded below by
``upstream_poll_interval_s`` and above by ``upstream_poll_max_interval_s``, each with +-20 %
jitter so that tasks submitted together do not poll together. So a relax Midjourney task is first
polled after minutes, not every second, and a task that overruns its estimate is polled less and
less often rather than more. A resumed attempt (its upstream job submitted by an earlier one)
polls at once. ``upstream_polls_per_s_per_account`` caps how often one worker process polls one
account (0: no cap); polls over the cap wait their turn.

With upstream callbacks (taskgate/providers/callbacks.py, for providers in ``CALLBACK_PROVIDERS``), an
attempt registers for its callback before it submits; polling then is only the slow safety
check: the first poll at 1.5x the expected duration, then every ``callback_safety_poll_s``, and a
callback wakes the attempt to poll at once. The worker's watcher (worker/watcher.py) asks this
module when to poll each attempt it holds; nothing here sleeps per attempt."""

from __future__ import annotations

import asyncio
import random
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from taskgate.providers import callbacks
from taskgate.settings import Settings
from taskgate.worker.callbacks import CallbackHub

FIRST_FRACTION = 0.5  # first poll at this share of the expected duration
INTERVAL_DIVISOR = 10.0  # later polls every 1/10 of max(expected, waited)
JITTER = 0.2
DEFAULT_DURATIONS = Path(__file__).resolve().parent.parent / "data" / "durations.toml"
SIM_PROVIDER = "sim"
CALLBACK_PROVIDERS = frozenset({SIM_PROVIDER, "goapi"})  # adapters that pass a callback URL upstream
CALLBACK_FIRST_FACTOR = 1.5  # with callbacks: the first safety poll, in expected durations


class DurationsError(ValueError):
    """The durations file is malformed."""


@dataclass(frozen=True, slots=True)
class ExpectedDurations:
    default: dict[str, float]
    models: dict[str, dict[str, float]]

    @classmethod
    def load(cls, path: Path | None = None) -> ExpectedDurations:
        source = path or DEFAULT_DURATIONS
        try:
            doc = tomllib.loads(source.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise DurationsError(f"{source}: {exc}") from exc
        models = doc.get("models", {})
        if not isinstance(models, dict):
            raise DurationsError(f"{source}: [models] must be a table")
        default = _modes(doc.get("default", {}), f"{source} [default]")
        if "fast" not in default:
            raise DurationsError(f"{source}: [default] needs at least 'fast'")
        return cls(default, {m: _modes(v, f"{source} [models.{m}]") for m, v in models.items()})

    def expected_s(self, model: str, mode: str) -> float:
        by_mode = self.models.get(model, {})
        for table in (by_mode, self.default):
            if mode in table:
                return table[mode]
        return by_mode.get("fast", self.default["fast"])


def _modes(raw: object, where: str) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise DurationsError(f"{where} must be a table of mode = seconds")
    out: dict[str, float] = {}
    for mode, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 86_400:
            raise DurationsError(f"{where}: {mode} must be a number of seconds in 0..86400")
        out[str(mode)] = float(value)
    return out


class PollSchedule:
    """The delays before each poll of one attempt."""

    def __init__(
        self,
        expected_s: float,
        floor_s: float,
        ceiling_s: float,
        rng: random.Random,
        started_at: float,
        callback: bool = False,
        safety_s: float = 0.0,
    ) -> None:
        self.expected_s, self.floor_s, self.ceiling_s = expected_s, floor_s, max(ceiling_s, floor_s)
        self.rng, self.started_at = rng, started_at
        self.callback, self.safety_s = callback, safety_s  # callback: one is expected

    def first_delay(self, resumed: bool) -> float:
        if resumed:
            return 0.0
        factor = CALLBACK_FIRST_FACTOR if self.callback else FIRST_FRACTION
        return self._jitter(self.expected_s * factor)

    def next_delay(self, now: float) -> float:
        if self.callback:
            return self._jitter(max(self.safety_s, self.floor_s))
        waited = max(0.0, now - self.started_at)
        base = min(max(max(self.expected_s, waited) / INTERVAL_DIVISOR, self.floor_s), self.ceiling_s)
        return self._jitter(base)

    def _jitter(self, delay: float) -> float:
        return delay * self.rng.uniform(1 - JITTER, 1 + JITTER) if delay > 0 else 0.0


class AccountPollLimiter:
    """At most ``per_s`` polls a second per account in this process: each poll takes the next
    free slot of its account (1/per_s apart) and waits for it."""

    def __init__(self, per_s: float) -> None:
        self.spacing = 1.0 / per_s if per_s > 0 else 0.0
        self._next_free: dict[str, float] = {}

    def reserve(self, account_id: str, now: float) -> float:
        """Take the account's next free slot; returns when it is (``now`` if free at once)."""
        if not self.spacing:
            return now
        slot = max(now, self._next_free.get(account_id, 0.0))
        self._next_free[account_id] = slot + self.spacing
        return slot

    async def acquire(self, account_id: str) -> None:
        now = asyncio.get_running_loop().time()
        slot = self.reserve(account_id, now)
        if slot > now:
            await asyncio.sleep(slot - now)


class Polling:
    """What the watcher asks for each attempt: when to poll, the account's turn, callback wake-ups."""

    def __init__(
        self,
        settings: Settings,
        durations: ExpectedDurations | None = None,
        rng: random.Random | None = None,
        hub: CallbackHub | None = None,
    ) -> None:
        self.settings = settings
        self.durations = durations or ExpectedDurations.load(settings.poll_durations_path)
        self.rng = rng or random.Random()
        self.limiter = AccountPollLimiter(settings.upstream_polls_per_s_per_account)
        self.hub = hub if callbacks.enabled(settings) else None
        self._expected: set[tuple[str, int]] = set()

    async def expect_callback(
        self, provider: str, task_id: str, attempt: int, on_wake: Callable[[], None]
    ) -> str:
        """Before a submit: the callback URL to register upstream ("" if none); from now on a
        callback for this attempt calls ``on_wake``."""
        if self.hub is None or provider not in CALLBACK_PROVIDERS:
            return ""
        await self.hub.listen_for(task_id, attempt, on_wake)
        self._expected.add((task_id, attempt))
        return callbacks.callback_url(self.settings, task_id, attempt, provider)

    def forget(self, task_id: str, attempt: int) -> None:
        if (task_id, attempt) in self._expected and self.hub is not None:
            self._expected.discard((task_id, attempt))
            self.hub.forget(task_id, attempt)

    def expected_s(self, provider: str, model: str, mode: str) -> float:
        if provider == SIM_PROVIDER:
            s = self.settings
            if mode == "turbo":
                return s.sim_latency_turbo_s
            return s.sim_latency_relax_s if mode == "relax" else s.sim_latency_fast_s
        return self.durations.expected_s(model, mode)

    def schedule(self, provider: str, model: str, mode: str, callback: bool = False) -> PollSchedule:
        return PollSchedule(
            self.expected_s(provider, model, mode),
            self.settings.upstream_poll_interval_s,
            self.settings.upstream_poll_max_interval_s,
            self.rng,
            asyncio.get_running_loop().time(),
            callback=callback,
            safety_s=self.settings.callback_safety_poll_s,
        )

    def expects_callback(self, task_id: str, attempt: int) -> bool:
        return (task_id, attempt) in self._expected
