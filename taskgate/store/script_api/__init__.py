"""The typed script layer: one function per Lua script, the one place that lists every script.
The functions live in one module per package of scripts (``billing``, ``metrics``, ``pool``,
``scheduler``, ``tasks``, ``users`` for store/lua, ``webhooks``, ``worker``), gathered here, so
callers write ``script_api.finish_task(...)``; ``typed.py`` holds the registry they join.

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

from taskgate.store.script_api.billing import (
    Balance as Balance,
)
from taskgate.store.script_api.billing import (
    adjust_wallet as adjust_wallet,
)
from taskgate.store.script_api.billing import (
    record_incorrect as record_incorrect,
)
from taskgate.store.script_api.metrics import (
    count_pending as count_pending,
)
from taskgate.store.script_api.metrics import (
    read_cluster as read_cluster,
)
from taskgate.store.script_api.metrics import (
    sum_frozen as sum_frozen,
)
from taskgate.store.script_api.pool import (
    AccountReport as AccountReport,
)
from taskgate.store.script_api.pool import (
    StateChange as StateChange,
)
from taskgate.store.script_api.pool import (
    Sweep as Sweep,
)
from taskgate.store.script_api.pool import (
    put_account as put_account,
)
from taskgate.store.script_api.pool import (
    remove_account as remove_account,
)
from taskgate.store.script_api.pool import (
    report_account as report_account,
)
from taskgate.store.script_api.pool import (
    set_account_state as set_account_state,
)
from taskgate.store.script_api.pool import (
    sweep_accounts as sweep_accounts,
)
from taskgate.store.script_api.scheduler import (
    DispatchedTask as DispatchedTask,
)
from taskgate.store.script_api.scheduler import (
    LeasesRenewal as LeasesRenewal,
)
from taskgate.store.script_api.scheduler import (
    dispatch_tasks as dispatch_tasks,
)
from taskgate.store.script_api.scheduler import (
    read_pending as read_pending,
)
from taskgate.store.script_api.scheduler import (
    reap_leases as reap_leases,
)
from taskgate.store.script_api.scheduler import (
    renew_leases as renew_leases,
)
from taskgate.store.script_api.tasks import (
    CreatedTask as CreatedTask,
)
from taskgate.store.script_api.tasks import (
    FinishedAttempt as FinishedAttempt,
)
from taskgate.store.script_api.tasks import (
    TaskRead as TaskRead,
)
from taskgate.store.script_api.tasks import (
    cancel_task as cancel_task,
)
from taskgate.store.script_api.tasks import (
    cancel_tasks as cancel_tasks,
)
from taskgate.store.script_api.tasks import (
    create_task as create_task,
)
from taskgate.store.script_api.tasks import (
    finish_task as finish_task,
)
from taskgate.store.script_api.tasks import (
    read_task as read_task,
)
from taskgate.store.script_api.tasks import (
    record_progress as record_progress,
)
from taskgate.store.script_api.tasks import (
    redeliver_webhook as redeliver_webhook,
)
from taskgate.store.script_api.tasks import (
    requeue_task as requeue_task,
)
from taskgate.store.script_api.typed import TYPED as TYPED
from taskgate.store.script_api.typed import TypedScript as TypedScript
from taskgate.store.script_api.users import (
    create_user as create_user,
)
from taskgate.store.script_api.users import (
    revoke_api_key as revoke_api_key,
)
from taskgate.store.script_api.users import (
    rotate_api_key as rotate_api_key,
)
from taskgate.store.script_api.webhooks import (
    Claim as Claim,
)
from taskgate.store.script_api.webhooks import (
    Claims as Claims,
)
from taskgate.store.script_api.webhooks import (
    DeliveryRead as DeliveryRead,
)
from taskgate.store.script_api.webhooks import (
    claim_deliveries as claim_deliveries,
)
from taskgate.store.script_api.webhooks import (
    read_delivery as read_delivery,
)
from taskgate.store.script_api.webhooks import (
    record_delivery as record_delivery,
)
from taskgate.store.script_api.worker import (
    ClaimedJob as ClaimedJob,
)
from taskgate.store.script_api.worker import (
    claim_jobs as claim_jobs,
)
