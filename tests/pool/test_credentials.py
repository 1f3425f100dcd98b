"""S10: an upstream that rejects an account's credentials (401/403) disables the account with the
reason ``credentials_rejected``; it is not a ban, never lifts by itself (no probe, no sweep), and is
lifted by an operator setting a new key. The task that met it moves on, charged once."""

from __future__ import annotations

from pydantic import SecretStr

from taskgate.models import AccountState
from taskgate.pool.health import Signal
from taskgate.providers.base import ErrorKind, ProviderError
from taskgate.scheduler.dispatcher import Dispatcher
from tests.factories import enqueue, make_account, make_user, task_fields, wallet
from tests.pool.conftest import T0, FakeProbe, account_hash, state_of
from tests.pool.test_worker_health import ScriptedUpstream, runner_for


async def test_rejected_credentials_disable_until_a_new_key(redis, scripts, keys, health, registry):
    owner = await make_user(redis, scripts, keys, plan="developer")
    acc = await make_account(scripts, keys, owner=owner, capacity=2)
    assert await health.report(acc, ErrorKind.CREDENTIALS, reason="401 invalid api key", now_ms=T0) == (
        "active",
        "disabled",
    )
    a = await account_hash(redis, keys, acc)
    assert (a["state"], a["state_reason"], a["state_by"]) == ("disabled", "credentials_rejected", "health")
    [event] = await registry.events(owner)
    assert (event["state"], event["reason"]) == ("disabled", "credentials_rejected")
    # nothing lifts it by itself: a passing probe, the cooldown sweep, later successes
    await health.report(acc, Signal.PROBE_PASSED, now_ms=T0 + 1)
    await health.sweep(now_ms=T0 + 10**9)
    await health.report(acc, None, now_ms=T0 + 2)
    assert await health.probe_all(registry, {"sim": FakeProbe()}) == 0
    assert await state_of(redis, keys, acc) == AccountState.DISABLED
    # an update that does not change the key does not lift it either
    await registry.update(acc, capacity=3)
    assert await state_of(redis, keys, acc) == AccountState.DISABLED
    await registry.update(acc, api_key=SecretStr("the-fixed-key"))
    a = await account_hash(redis, keys, acc)
    assert (a["state"], a["state_reason"], a["state_by"]) == ("active", "credentials updated", "operator")
    assert (await registry.access(acc)).api_key.get_secret_value() == "the-fixed-key"
    assert [e["state"] for e in await registry.events(owner)][:2] == ["active", "disabled"]


async def test_a_ban_or_an_operator_pause_is_not_lifted_by_a_new_key(redis, scripts, keys, health, registry):
    banned = await make_account(scripts, keys)
    paused = await make_account(scripts, keys)
    await health.report(banned, ErrorKind.BANNED, reason="account suspended")
    await health.report(banned, ErrorKind.CREDENTIALS)  # a ban is never turned into a lighter state
    await registry.pause(paused)
    await health.report(paused, ErrorKind.CREDENTIALS)  # health never overrides an operator
    for acc in (banned, paused):
        await registry.update(acc, api_key=SecretStr("new"))
    assert await state_of(redis, keys, banned) == AccountState.BANNED
    a = await account_hash(redis, keys, paused)
    assert (a["state"], a["state_reason"]) == ("disabled", "paused by operator")


async def test_the_task_moves_on_without_a_new_charge(redis, scripts, keys, settings, health):
    u = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    bad = await make_account(scripts, keys, capacity=5, priority=9)
    good = await make_account(scripts, keys, capacity=5, priority=1)
    task_id = await enqueue(scripts, keys, u, price=14)
    rejected = ProviderError(ErrorKind.CREDENTIALS, "upstream refused (401): bad key")
    upstream = ScriptedUpstream({bad: rejected})
    runner = runner_for(redis, settings, health, upstream)
    d = Dispatcher(redis, scripts, keys, settings)
    [first] = await d.dispatch()
    assert first.account_id == bad and await runner.run(task_id, 1) == "pending"
    assert (await account_hash(redis, keys, bad))["state_reason"] == "credentials_rejected"
    [second] = await d.dispatch()
    assert (second.account_id, second.attempt) == (good, 2)
    assert await runner.run(task_id, 2) == "completed"
    assert (await task_fields(redis, keys, task_id))["consume"] == "14"
    w = await wallet(redis, keys, u, "mj_quota")
    assert (w["available"], w["frozen"], w["consumed"]) == (86, 0, 14)
