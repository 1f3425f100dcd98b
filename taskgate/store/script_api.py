"""The typed script layer: one function per Lua script, the one place that lists every script.

Each function takes the ``Scripts`` registry and the deployment's ``Keys``, then named keyword
arguments: those the script's header lists as ``-- ARGV[i] name`` (in that order; ``base`` is
always ``keys.base`` and is not a parameter) and, declared in ``key_args``, those that only build
its KEYS. It returns a small frozen dataclass, or a plain value when the script answers one.
``Scripts.call`` underneath checks the KEYS and ARGV counts, retries, WAITs and maps errors
(a not-found reply names its entity). tests/lua/test_script_api.py checks every registered script
has a function here whose parameters match its header.

``now`` is a clock override in ms (``None``: Redis TIME), as every script's ``now`` argument.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True, slots=True)
class TypedScript:
    name: str
    function: Callable[..., Awaitable[Any]]
    key_args: tuple[str, ...]  # parameters that build KEYS only (never sent as ARGV)


TYPED: dict[str, TypedScript] = {}


def typed(name: str, *, key_args: tuple[str, ...] = ()) -> Callable[[F], F]:
    def register(function: F) -> F:
        if name in TYPED:
            raise ValueError(f"two typed functions for {name}")
        TYPED[name] = TypedScript(name, function, key_args)
        return function

    return register


def _now(now: int | None) -> int | str:
    return now or ""


def _flag(value: bool) -> str:
    return "1" if value else "0"


# --- results -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Balance:
    available: int
    frozen: int
    consumed: int


@dataclass(frozen=True, slots=True)
class CreatedTask:
    task_id: str
    created: bool  # False: a duplicate (same Idempotency-Key, or a repeat of the same call)
    # what a created task's first read needs (zero/empty for a duplicate)
    created_ms: int = 0
    unit: str = ""
    frozen: int = 0
    running: int = 0  # the user's leased PPU slots
    flow_wait: str = ""  # the flow's wait reason, "" when none


@dataclass(frozen=True, slots=True)
class TaskRead:
    user: list[Any]  # the requested user fields' values, in order (None when unset)
    task: dict[str, str]
    running: int
    flow_wait: str


@dataclass(frozen=True, slots=True)
class FinishedAttempt:
    status: str  # the task's status afterwards: pending (retried, handed back), completed, failed
    task: dict[str, str]  # the task's fields the worker's metrics count, as settled ("" when unset)


@dataclass(frozen=True, slots=True)
class StateChange:
    old_state: str
    new_state: str


@dataclass(frozen=True, slots=True)
class AccountReport:
    old_state: str  # "" (and new_state "") for an unknown account
    new_state: str
    cooldown_until: int


@dataclass(frozen=True, slots=True)
class Sweep:
    accounts_returned: int
    tasks_failed: int


@dataclass(frozen=True, slots=True)
class DispatchedTask:
    task_id: str
    attempt: int
    account_id: str


@dataclass(frozen=True, slots=True)
class LeaseRenewal:
    deadline: int
    cancel_requested: bool


@dataclass(frozen=True, slots=True)
class LeasesRenewal:
    deadline: int
    lost: list[str]  # not extended: attempt no longer current, or lease already reaped
    cancel: list[str]  # renewed, and their user asked to cancel


@dataclass(frozen=True, slots=True)
class Claim:
    delivery_id: str
    task_id: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Claims:
    now: int
    claims: list[Claim]


@dataclass(frozen=True, slots=True)
class DeliveryRead:
    task: dict[str, str]  # empty when the task is gone
    owner: dict[str, str]  # the task's user, empty when unknown
    endpoint_gone: bool  # the task's endpoint answered 410 Gone earlier


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    job_id: str
    score: int  # when the job was due (ms)
    data: str | None  # arq's job (JSON); None when the job key has expired
    job_try: int  # arq's retry counter, this start counted
    task: dict[str, str]  # the attempt's task hash; empty when gone or the job is not an attempt's


# --- billing -------------------------------------------------------------------------------------
@typed("adjust_wallet")
async def adjust_wallet(
    s: Scripts,
    k: Keys,
    *,
    now: int | None = None,
    user_id: str,
    unit: str,
    amount: int,
    kind: str,
    reason: str,
) -> Balance:
    r = await s.call(
        "adjust_wallet",
        keys=[k.wallet(user_id), k.ledger(user_id)],
        args=[_now(now), user_id, unit, amount, kind, reason],
    )
    return Balance(int(r[1]), int(r[2]), int(r[3]))


@typed("record_incorrect")
async def record_incorrect(s: Scripts, k: Keys, *, now: int | None = None, user_id: str) -> int:
    """The user's incorrect tasks today; NotFound("user") for an unknown user."""
    r = await s.call("record_incorrect", keys=[k.user(user_id)], args=[k.base, _now(now), user_id])
    return int(r[1])


# --- metrics (JSON answers; the callers parse them) ----------------------------------------------
@typed("count_pending")
async def count_pending(s: Scripts, k: Keys, *, flows: Sequence[str]) -> str:
    r = await s.call("count_pending", keys=[k.flow_meta()], args=[k.base, *flows])
    return str(r[1])


@typed("read_cluster")
async def read_cluster(s: Scripts, k: Keys, *, now: int | None = None) -> str:
    r = await s.call(
        "read_cluster", keys=[k.leases(), k.accounts(), k.webhook_outbox()], args=[k.base, _now(now)]
    )
    return str(r[1])


@typed("sum_frozen")
async def sum_frozen(s: Scripts, k: Keys, *, user_ids: Sequence[str]) -> str:
    r = await s.call("sum_frozen", keys=[k.users()], args=[k.base, *user_ids])
    return str(r[1])


# --- pool ----------------------------------------------------------------------------------------
def _account_keys(k: Keys, account_id: str) -> list[str]:
    return [k.account(account_id), k.accounts(), k.account_secret(account_id)]


@typed("put_account")
async def put_account(
    s: Scripts, k: Keys, *, now: int | None = None, account_id: str, fields: Mapping[str, str], secret: str
) -> bool:
    """True when the account was created, False when updated; ``secret`` "" keeps the stored one."""
    r = await s.call(
        "put_account",
        keys=_account_keys(k, account_id),
        args=[k.base, _now(now), account_id, json.dumps(fields), secret],
    )
    return int(r[2]) == 1


@typed("remove_account")
async def remove_account(s: Scripts, k: Keys, *, account_id: str) -> bool:
    """False when no such account existed."""
    r = await s.call("remove_account", keys=_account_keys(k, account_id), args=[k.base, account_id])
    return int(r[1]) == 1


@typed("report_account")
async def report_account(
    s: Scripts,
    k: Keys,
    *,
    now: int | None = None,
    account_id: str,
    kind: str,
    retry_after_ms: int,
    window_ms: int,
    threshold: int,
    base_ms: int,
    max_ms: int,
    reason: str,
) -> AccountReport:
    r = await s.call(
        "report_account",
        keys=[k.account(account_id), k.account_failures(account_id)],
        args=[
            k.base,
            _now(now),
            account_id,
            kind,
            retry_after_ms,
            window_ms,
            threshold,
            base_ms,
            max_ms,
            reason,
        ],
    )
    return AccountReport(str(r[1]), str(r[2]), int(r[3]))


@typed("set_account_state")
async def set_account_state(
    s: Scripts,
    k: Keys,
    *,
    now: int | None = None,
    account_id: str,
    state: str,
    until_ms: int,
    by: str,
    reason: str,
) -> StateChange:
    """NotFound("account") for an unknown account."""
    r = await s.call(
        "set_account_state",
        keys=[k.account(account_id)],
        args=[k.base, _now(now), account_id, state, until_ms, by, reason],
    )
    return StateChange(str(r[1]), str(r[2]))


@typed("sweep_accounts")
async def sweep_accounts(
    s: Scripts, k: Keys, *, now: int | None = None, byoa_max_ms: int, limit: int
) -> Sweep:
    r = await s.call(
        "sweep_accounts",
        keys=[k.cooldowns(), k.byoa_waiting()],
        args=[k.base, _now(now), byoa_max_ms, limit],
    )
    return Sweep(int(r[1]), int(r[2]))


# --- scheduler -----------------------------------------------------------------------------------
@typed("dispatch_tasks")
async def dispatch_tasks(
    s: Scripts,
    k: Keys,
    *,
    now: int | None = None,
    max_n: int,
    lease_ms: int,
    relax_pm: int,
    relax_wait: int,
    job_prefix: str,
    job_ttl_ms: int,
    max_wait_ms: int,
    max_queued: int = 0,
) -> list[DispatchedTask]:
    r = await s.call(
        "dispatch_tasks",
        keys=[k.sched(), k.arq_queue(), k.worker_jobs()],
        args=[
            k.base,
            _now(now),
            max_n,
            lease_ms,
            relax_pm,
            relax_wait,
            job_prefix,
            job_ttl_ms,
            max_wait_ms,
            max_queued,
        ],
    )
    flat = r[2:]
    return [DispatchedTask(flat[i], int(flat[i + 1]), flat[i + 2]) for i in range(0, len(flat), 3)]


@typed("read_pending")
async def read_pending(s: Scripts, k: Keys, *, now: int | None = None) -> str:
    r = await s.call(
        "read_pending", keys=[k.flow_meta(), k.flow_wait(), k.tasks_aside()], args=[k.base, _now(now)]
    )
    return str(r[1])


@typed("reap_leases")
async def reap_leases(
    s: Scripts,
    k: Keys,
    *,
    now: int | None = None,
    limit: int,
    max_attempts: int,
    lease_ms: int,
    job_prefix: str,
    progress_prefix: str,
) -> list[tuple[str, str]]:
    """(task_id, status) per expired lease: pending = retried, failed = given up, queued = its job
    still waits for a worker (lease extended, attempt kept)."""
    r = await s.call(
        "reap_leases",
        keys=[k.leases(), k.arq_queue()],
        args=[k.base, _now(now), limit, max_attempts, lease_ms, job_prefix, progress_prefix],
    )
    flat = r[2:]
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


@typed("renew_lease")
async def renew_lease(
    s: Scripts, k: Keys, *, now: int | None = None, task_id: str, attempt: int, lease_ms: int
) -> LeaseRenewal:
    r = await s.call(
        "renew_lease",
        keys=[k.task(task_id), k.leases()],
        args=[k.base, _now(now), task_id, attempt, lease_ms],
    )
    return LeaseRenewal(int(r[1]), int(r[2]) == 1)


@typed("renew_leases")
async def renew_leases(
    s: Scripts, k: Keys, *, now: int | None = None, lease_ms: int, leases: Sequence[tuple[str, int]]
) -> LeasesRenewal:
    """``leases``: (task_id, attempt) pairs, each renewed as renew_lease would."""
    pairs = [x for lease in leases for x in lease]
    r = await s.call("renew_leases", keys=[k.leases()], args=[k.base, _now(now), lease_ms, *pairs])
    return LeasesRenewal(int(r[1]), list(r[2]), list(r[3]))


# --- users and keys (store) ----------------------------------------------------------------------
@typed("create_user")
async def create_user(s: Scripts, k: Keys, *, user_id: str, digest: str, fields: Mapping[str, str]) -> None:
    await s.call(
        "create_user",
        keys=[k.user(user_id), k.users(), k.api_key(digest), k.user_api_keys(user_id)],
        args=[user_id, digest, *(x for pair in fields.items() for x in pair)],
    )


@typed("revoke_api_key")
async def revoke_api_key(s: Scripts, k: Keys, *, digest: str) -> str:
    """The user whose key it was; NotFound("api key") when no key has this digest."""
    r = await s.call("revoke_api_key", keys=[k.api_key(digest)], args=[k.base, digest])
    return str(r[1])


@typed("rotate_api_key")
async def rotate_api_key(s: Scripts, k: Keys, *, digest: str, user_id: str) -> int:
    """How many old keys were revoked; NotFound("user") for an unknown user."""
    r = await s.call(
        "rotate_api_key", keys=[k.user(user_id), k.user_api_keys(user_id)], args=[k.base, digest, user_id]
    )
    return int(r[1])


# --- tasks ---------------------------------------------------------------------------------------
@typed("cancel_task")
async def cancel_task(s: Scripts, k: Keys, *, now: int | None = None, task_id: str, user_id: str) -> str:
    """The task's status afterwards; NotFound("task") for an unknown task or another user's."""
    r = await s.call("cancel_task", keys=[k.task(task_id)], args=[k.base, _now(now), task_id, user_id])
    return str(r[1])


@typed("cancel_tasks")
async def cancel_tasks(
    s: Scripts, k: Keys, *, now: int | None = None, user_id: str, task_ids: Sequence[str]
) -> list[str]:
    """Each task's status afterwards, in order; all or nothing (NotFound("task") naming the first)."""
    r = await s.call("cancel_tasks", keys=[k.user(user_id)], args=[k.base, _now(now), user_id, *task_ids])
    return [str(x) for x in r[1:]]


@typed("create_task", key_args=("user_id", "idem_digest"))
async def create_task(
    s: Scripts,
    k: Keys,
    *,
    user_id: str,
    idem_digest: str,
    now: int | None = None,
    task_id: str,
    fields: Mapping[str, str],
    unit: str,
    price: int,
    relax: bool,
    flow_id: str,
    idem_ttl_ms: int,
    key_digest: str = "",
    user_stamp: str = "",
) -> CreatedTask:
    """``idem_digest``: the Idempotency-Key's digest ("-" and ``idem_ttl_ms`` 0 without one);
    ``key_digest`` (with ``user_stamp``): re-check the caller's API key and user in the script."""
    r = await s.call(
        "create_task",
        keys=[
            k.task(task_id),
            k.user(user_id),
            k.wallet(user_id),
            k.ledger(user_id),
            k.user_tasks(user_id),
            k.idempotency(user_id, idem_digest),
            k.flow(flow_id),
        ],
        args=[
            k.base,
            _now(now),
            task_id,
            json.dumps(fields),
            unit,
            price,
            _flag(relax),
            flow_id,
            idem_ttl_ms,
            key_digest,
            user_stamp,
        ],
    )
    if int(r[2]) != 1:
        return CreatedTask(str(r[1]), False)
    _, task_id, _, created_ms, unit, frozen, running, flow_wait = r
    return CreatedTask(task_id, True, int(created_ms), unit or "", int(frozen), int(running), flow_wait or "")


@typed("read_task", key_args=("key_digest",))
async def read_task(s: Scripts, k: Keys, *, key_digest: str, task_id: str, fields: Sequence[str]) -> TaskRead:
    """A customer's read of one task with its API key checked in the same step."""
    r = await s.call(
        "read_task",
        keys=[k.api_key(key_digest), k.task(task_id), k.flow_wait()],
        args=[k.base, task_id, *fields],
    )
    return TaskRead(list(r[1]), _flat_dict(r[2]), int(r[3]), r[4] or "")


@typed("finish_task")
async def finish_task(
    s: Scripts,
    k: Keys,
    *,
    now: int | None = None,
    task_id: str,
    attempt: int,
    outcome: str,
    output: Any = None,
    error: Any = None,
    max_attempts: int,
    blame: bool = False,
) -> FinishedAttempt:
    """The task's status afterwards and its settled fields (metrics/tasks.py FINISH_FIELDS).
    ``output`` / ``error`` are JSON-encoded (None: none)."""
    r = await s.call(
        "finish_task",
        keys=[k.task(task_id), k.task_failed_accounts(task_id)],
        args=[
            k.base,
            _now(now),
            task_id,
            attempt,
            outcome,
            "" if output is None else json.dumps(output),
            "" if error is None else json.dumps(error),
            max_attempts,
            _flag(blame),
        ],
    )
    return FinishedAttempt(str(r[1]), _flat_dict(r[2]))


@typed("record_progress")
async def record_progress(
    s: Scripts,
    k: Keys,
    *,
    now: int | None = None,
    task_id: str,
    attempt: int,
    upstream_id: str = "",
    progress: int | None = None,
    notify: bool = False,
) -> bool:
    """Whether the user asked to cancel. ``upstream_id`` "" / ``progress`` None leave them as they are."""
    r = await s.call(
        "record_progress",
        keys=[k.task(task_id)],
        args=[
            k.base,
            _now(now),
            task_id,
            attempt,
            upstream_id,
            "" if progress is None else progress,
            _flag(notify),
        ],
    )
    return int(r[1]) == 1


@typed("redeliver_webhook")
async def redeliver_webhook(s: Scripts, k: Keys, *, now: int | None = None, task_id: str) -> str:
    """The new delivery's id."""
    r = await s.call("redeliver_webhook", keys=[k.task(task_id)], args=[k.base, _now(now), task_id])
    return str(r[1])


@typed("requeue_task")
async def requeue_task(s: Scripts, k: Keys, *, now: int | None = None, task_id: str) -> str:
    """The task's status before."""
    r = await s.call("requeue_task", keys=[k.task(task_id)], args=[k.base, _now(now), task_id])
    return str(r[1])


# --- worker --------------------------------------------------------------------------------------
@typed("claim_jobs")
async def claim_jobs(
    s: Scripts,
    k: Keys,
    *,
    now: int | None = None,
    job_prefix: str,
    progress_prefix: str,
    retry_prefix: str,
    in_progress_ms: int,
    retry_ttl_s: int,
    jobs: Sequence[tuple[str, str]],
) -> list[ClaimedJob]:
    """``jobs``: (job id, task id or "") pairs; the answer lists the claimed ones only."""
    pairs = [part for job in jobs for part in job]
    r = await s.call(
        "claim_jobs",
        keys=[k.arq_queue()],
        args=[
            k.base,
            _now(now),
            job_prefix,
            progress_prefix,
            retry_prefix,
            in_progress_ms,
            retry_ttl_s,
            *pairs,
        ],
    )
    flat = r[1:]
    return [
        ClaimedJob(flat[i], int(flat[i + 1]), flat[i + 2], int(flat[i + 3]), _flat_dict(flat[i + 4]))
        for i in range(0, len(flat), 5)
    ]


# --- webhooks ------------------------------------------------------------------------------------
def _outbox_keys(k: Keys) -> list[str]:
    return [k.webhook_outbox(), k.webhook_sent_seq(), k.webhook_inflight()]


@typed("claim_deliveries")
async def claim_deliveries(
    s: Scripts, k: Keys, *, now: int | None = None, limit: int, claim_ms: int
) -> Claims:
    r = await s.call("claim_deliveries", keys=_outbox_keys(k), args=[k.base, _now(now), limit, claim_ms])
    flat = r[2:]
    return Claims(int(r[1]), [Claim(flat[i], flat[i + 1], int(flat[i + 2])) for i in range(0, len(flat), 3)])


@typed("record_delivery")
async def record_delivery(
    s: Scripts,
    k: Keys,
    *,
    now: int | None = None,
    delivery_id: str,
    task_id: str,
    result: str,
    sent_seq: int,
    retry_at_ms: int = 0,
    record: Mapping[str, Any],
) -> int:
    """How many attempts the task's delivery log holds; ``record`` is JSON-encoded."""
    r = await s.call(
        "record_delivery",
        keys=[*_outbox_keys(k), k.webhook_delivery(delivery_id), k.webhook_attempts(task_id)],
        args=[_now(now), delivery_id, task_id, result, sent_seq, retry_at_ms, json.dumps(record), k.base],
    )
    return int(r[1])


@typed("read_delivery", key_args=("task_id",))
async def read_delivery(s: Scripts, k: Keys, *, task_id: str) -> DeliveryRead:
    r = await s.call("read_delivery", keys=[k.task(task_id), k.webhook_disabled()], args=[k.base])
    return DeliveryRead(_flat_dict(r[1]), _flat_dict(r[2]), bool(int(r[3])))


def _flat_dict(flat: list[str]) -> dict[str, str]:
    """A flat HGETALL reply from a script (``Scripts.call`` decodes text) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))
