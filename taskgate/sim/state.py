"""The simulator's in-memory world: jobs, per-account behaviour and counters (no HTTP here).

A job's life is a pure function of the clock: ``pending`` for the first tenth of its duration
(at most ``PENDING_MAX_S``), then ``running`` with progress rising with elapsed time, then
``completed`` or ``failed`` with the outcome drawn at submit time (from a prompt directive, else
from the configured rates). Nothing runs in the background."""

from __future__ import annotations

import heapq
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from taskgate.providers.base import ErrorKind
from taskgate.settings import Settings
from taskgate.sim.directives import ACCOUNT_FLIPPING, SimOutcome, directive_of
from taskgate.sim.outputs import output_for

PENDING_MAX_S = 0.5
JITTER = (0.8, 1.2)  # latency spread around the mode's mean when no directive sets a duration
COUNTERS = ("submit_requests", "jobs_submitted", "duplicate_submits", "cancelled")
FAST_MODES = frozenset({"fast", "turbo"})
FAILURE_MESSAGES = {
    SimOutcome.INCORRECT: "prompt rejected by the upstream moderation (simulated)",
    SimOutcome.TRANSIENT: "upstream worker crashed (simulated)",
    SimOutcome.CAPTCHA: "account needs a captcha (simulated)",
    SimOutcome.BANNED: "account banned (simulated)",
}


class SimRefused(Exception):
    """An answer other than success: HTTP ``status`` with ``{"error": {"kind", "message"}}``."""

    def __init__(self, status: int, kind: str, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.retry_after_s = status, kind, message, retry_after_s


@dataclass
class SubmitBody:
    model: str
    task_type: str
    mode: str
    input: dict[str, Any]
    idempotency_key: str
    callback_url: str = ""  # sim/callbacks.py


@dataclass
class SimJob:
    id: str
    api_key: str
    body: SubmitBody
    created_at: float
    duration_s: float
    outcome: SimOutcome
    cancelled_at: float | None = None

    @property
    def ends_at(self) -> float:
        return self.created_at + self.duration_s if self.cancelled_at is None else self.cancelled_at

    def view(self, now: float, files_base: str) -> dict[str, Any]:
        """The job as ``GET /v1/jobs/{id}`` answers it."""
        elapsed = now - self.created_at
        if self.cancelled_at is not None:
            return _failed(
                self,
                _progress(self.cancelled_at - self.created_at, self.duration_s),
                "transient",
                "cancelled",
            )
        if elapsed >= self.duration_s:
            if self.outcome == SimOutcome.COMPLETED:
                output = output_for(self.body.model, self.body.task_type, self.id, files_base)
                return {
                    "id": self.id,
                    "status": "completed",
                    "progress": 100,
                    "output": output,
                    "error": None,
                }
            return _failed(self, 100, str(self.outcome), FAILURE_MESSAGES[self.outcome])
        if elapsed < min(self.duration_s * 0.1, PENDING_MAX_S):
            return {"id": self.id, "status": "pending", "progress": 0, "output": None, "error": None}
        return {
            "id": self.id,
            "status": "running",
            "progress": _progress(elapsed, self.duration_s),
            "output": None,
            "error": None,
        }


@dataclass
class AccountBehaviour:
    captcha: bool = False
    banned: bool = False
    key_rejected: bool = False  # the upstream no longer accepts this api key (401)
    rate_limited_until: float = 0.0
    fast_hours_left: float | None = None  # None: unlimited

    def view(self, now: float) -> dict[str, Any]:
        return {
            "captcha": self.captcha,
            "banned": self.banned,
            "key_rejected": self.key_rejected,
            "rate_limit_s": round(max(self.rate_limited_until - now, 0.0), 3),
            "fast_hours_left": self.fast_hours_left,
        }


@dataclass
class KeyLoad:
    """Jobs of one api key that have not ended yet, to measure concurrency exactly."""

    active: set[str] = field(default_factory=set)
    ends: list[tuple[float, str]] = field(default_factory=list)
    max_concurrent: int = 0

    def prune(self, now: float) -> None:
        while self.ends and self.ends[0][0] <= now:
            self.active.discard(heapq.heappop(self.ends)[1])


class SimState:
    def __init__(
        self, settings: Settings, *, seed: int | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.rng = random.Random(seed)
        self.clock = clock
        self.jobs: dict[str, SimJob] = {}
        self.by_idempotency: dict[tuple[str, str], str] = {}
        self.submits: Counter[tuple[str, str]] = Counter()
        self.accounts: dict[str, AccountBehaviour] = {}
        self.loads: dict[str, KeyLoad] = {}
        self.counters: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        # idempotency keys whose captcha/ban directive already struck an account: a retry of the
        # same task on another account runs normally, as a real task would after such an event
        self.flipped_keys: set[str] = set()

    # --- accounts ------------------------------------------------------------------------------

    def account(self, api_key: str) -> AccountBehaviour:
        return self.accounts.setdefault(api_key, AccountBehaviour())

    def configure(self, api_key: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Apply the known, well-typed fields of ``patch``; others are ignored."""
        acct, now = self.account(api_key), self.clock()
        if isinstance(patch.get("captcha"), bool):
            acct.captcha = patch["captcha"]
        if isinstance(patch.get("banned"), bool):
            acct.banned = patch["banned"]
        if isinstance(patch.get("key_rejected"), bool):
            acct.key_rejected = patch["key_rejected"]
        rate = _number(patch.get("rate_limit_s"))
        if rate is not None:
            acct.rate_limited_until = now + rate if rate > 0 else 0.0
        if "fast_hours_left" in patch:
            acct.fast_hours_left = _number(patch["fast_hours_left"], allow_negative=True)
        return acct.view(now)

    def check_account(self, api_key: str, mode: str | None = None) -> None:
        """Raise ``SimRefused`` when this account may not take work now (``mode`` None: probe)."""
        acct, now = self.account(api_key), self.clock()
        if acct.key_rejected:
            raise SimRefused(401, ErrorKind.CREDENTIALS, "invalid api key (simulated)")
        if acct.banned:
            raise SimRefused(403, ErrorKind.BANNED, "this account has been banned (simulated)")
        if acct.captcha:
            raise SimRefused(403, ErrorKind.CAPTCHA, "solve the captcha to continue (simulated)")
        if acct.rate_limited_until > now:
            raise SimRefused(
                429,
                ErrorKind.RATE_LIMITED,
                "too many requests (simulated)",
                retry_after_s=acct.rate_limited_until - now,
            )
        no_fast = acct.fast_hours_left is not None and acct.fast_hours_left <= 0
        if mode in FAST_MODES and no_fast:
            raise SimRefused(403, ErrorKind.FAST_HOURS, "fast hours used up; relax mode only (simulated)")

    # --- jobs ----------------------------------------------------------------------------------

    def submit(self, api_key: str, body: SubmitBody) -> tuple[SimJob, bool]:
        """The job for this idempotency key, and whether it was created now."""
        self.counters["submit_requests"] += 1
        ident = (api_key, body.idempotency_key)
        self.submits[ident] += 1
        existing = self.by_idempotency.get(ident)
        if existing is not None:
            self.counters["duplicate_submits"] += 1
            return self.jobs[existing], False
        try:
            self.check_account(api_key, body.mode)
        except SimRefused as refused:
            self.refused[str(refused.kind)] += 1
            raise
        job = self._create(api_key, body)
        self.by_idempotency[ident] = job.id
        return job, True

    def _create(self, api_key: str, body: SubmitBody) -> SimJob:
        directive, now = directive_of(body.input), self.clock()
        duration = directive.duration_s if directive.duration_s is not None else self._latency(body.mode)
        outcome = directive.outcome or self._draw_outcome()
        if outcome in ACCOUNT_FLIPPING:
            if body.idempotency_key in self.flipped_keys:
                outcome = SimOutcome.COMPLETED
            self.flipped_keys.add(body.idempotency_key)
        job = SimJob(uuid.uuid4().hex, api_key, body, now, duration, outcome)
        self.jobs[job.id] = job
        acct = self.account(api_key)
        if outcome in ACCOUNT_FLIPPING:  # the account turns bad now; later submits are refused
            acct.captcha = acct.captcha or outcome == SimOutcome.CAPTCHA
            acct.banned = acct.banned or outcome == SimOutcome.BANNED
        if body.mode in FAST_MODES and acct.fast_hours_left is not None:
            acct.fast_hours_left -= duration / 3600
        load = self.loads.setdefault(api_key, KeyLoad())
        load.prune(now)
        load.active.add(job.id)
        heapq.heappush(load.ends, (job.ends_at, job.id))
        load.max_concurrent = max(load.max_concurrent, len(load.active))
        self.counters["jobs_submitted"] += 1
        self.outcomes[str(outcome)] += 1
        return job

    def _latency(self, mode: str) -> float:
        s = self.settings
        means = {"turbo": s.sim_latency_turbo_s, "relax": s.sim_latency_relax_s}
        mean = means.get(mode, s.sim_latency_fast_s)
        return max(mean, 0.0) * self.rng.uniform(*JITTER)

    def _draw_outcome(self) -> SimOutcome:
        s, roll = self.settings, self.rng.random()
        rates = (
            (s.sim_failure_rate, SimOutcome.TRANSIENT),
            (s.sim_incorrect_rate, SimOutcome.INCORRECT),
            (s.sim_captcha_rate, SimOutcome.CAPTCHA),
            (s.sim_ban_rate, SimOutcome.BANNED),
        )
        for rate, outcome in rates:
            if roll < rate:
                return outcome
            roll -= rate
        return SimOutcome.COMPLETED

    def job(self, api_key: str, job_id: str) -> SimJob:
        job = self.jobs.get(job_id)
        if job is None or job.api_key != api_key:
            raise SimRefused(404, "not_found", "unknown job")
        return job

    def cancel(self, api_key: str, job_id: str) -> bool:
        job, now = self.job(api_key, job_id), self.clock()
        if job.cancelled_at is not None or now >= job.ends_at:
            return False
        job.cancelled_at = now
        self.loads[api_key].active.discard(job.id)
        self.counters["cancelled"] += 1
        return True

    def stats(self) -> dict[str, Any]:
        now = self.clock()
        for load in self.loads.values():
            load.prune(now)
        return {
            **{name: self.counters[name] for name in COUNTERS},
            "duplicate_keys": {key: n for (_, key), n in self.submits.items() if n > 1},
            "refused": dict(self.refused),
            "outcomes": dict(self.outcomes),
            "running_now": sum(len(load.active) for load in self.loads.values()),
            "running_by_key": {key: len(load.active) for key, load in self.loads.items()},
            "max_concurrent": {key: load.max_concurrent for key, load in self.loads.items()},
        }


def _progress(elapsed: float, duration: float) -> int:
    if duration <= 0:
        return 100
    return max(0, min(99, int(100 * elapsed / duration)))


def _failed(job: SimJob, progress: int, kind: str, message: str) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": "failed",
        "progress": progress,
        "output": None,
        "error": {"kind": kind, "message": message},
    }


def _number(value: Any, *, allow_negative: bool = False) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return number if allow_negative else max(number, 0.0)
