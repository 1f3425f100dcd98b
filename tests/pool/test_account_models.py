"""`accounts add --models m1,m2` takes what a user would type: a family (`midjourney`), a model name
(`Qubico/flux1-schnell`) or an alias (`mj`), and stores the families tasks are matched on. An unknown
name is refused with a clear message and nothing is written (before, `mj` was stored as is and the
account silently served nothing, and `Qubico/flux1-schnell` was refused)."""

from __future__ import annotations

import pytest

from taskgate.errors import InvalidInput
from taskgate.pool.registry import AccountSpec
from taskgate.scheduler.dispatcher import Dispatcher
from tests.factories import enqueue, make_user
from tests.pool.conftest import account_hash


async def test_aliases_and_model_names_become_families(redis, keys, registry):
    acc = await registry.add(AccountSpec(models=["mj", "Qubico/flux1-schnell", "midjourney", "Kling"]))
    assert (await account_hash(redis, keys, acc))["models"] == "midjourney,flux,kling"
    await registry.update(acc, models=["suno"])
    assert (await account_hash(redis, keys, acc))["models"] == "suno"


async def test_an_account_added_with_an_alias_serves_the_model(redis, scripts, keys, settings, registry):
    owner = await make_user(redis, scripts, keys, plan="developer")
    acc = await registry.add(AccountSpec(owner=owner, models=["mj"], capacity=1))
    task_id = await enqueue(scripts, keys, owner, pool="byoa")
    [dispatched] = await Dispatcher(redis, scripts, keys, settings).dispatch()
    assert (dispatched.task_id, dispatched.account_id) == (task_id, acc)


async def test_an_unknown_model_is_refused_and_nothing_changes(redis, keys, registry):
    before = await redis.smembers(keys.accounts())
    with pytest.raises(InvalidInput) as refused:
        await registry.add(AccountSpec(models=["midjourney", "nosuchmodel"]))
    assert refused.value.field == "models" and "nosuchmodel" in str(refused.value)
    assert await redis.smembers(keys.accounts()) == before
    acc = await registry.add(AccountSpec(models=["midjourney"]))
    with pytest.raises(InvalidInput):
        await registry.update(acc, models=["gpt-9"])
    assert (await account_hash(redis, keys, acc))["models"] == "midjourney"
