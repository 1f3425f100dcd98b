"""UserService: the user hash the Lua scripts read, hashed API keys, plan changes, refusals."""

from __future__ import annotations

import hashlib

import pytest

from taskgate.errors import InvalidInput, NotFound, Unauthorized
from taskgate.services import Services
from tests.api.conftest import snapshot


async def user_hash(services: Services, user_id: str) -> dict[str, str]:
    raw = await services.redis.hgetall(services.keys.user(user_id))
    return {k.decode(): v.decode() for k, v in raw.items()}


@pytest.mark.parametrize(
    ("plan", "failover", "cap", "effective"),
    [
        ("free", True, "3", "0"),  # free has no auto_failover feature: the setting alone is not enough
        ("developer", True, "9", "1"),
        ("premium", False, "30", "0"),
        ("enterprise", True, "100", "1"),
    ],
)
async def test_user_hash_holds_the_fields_lua_reads(services, plan, failover, cap, effective):
    user_id, api_key = await services.users.create(plan, failover=failover, service_mode="private")
    spec = services.catalogue.plan(plan)
    h = await user_hash(services, user_id)
    assert h["id"] == user_id and h["plan"] == plan and h["cap"] == cap
    assert h["weight"] == str(services.settings.plan_weights.get(plan, 1))
    assert h["relax_limit"] == str(spec.relax_daily) and h["incorrect_limit"] == str(spec.incorrect_daily)
    assert h["incorrect_penalty"] == ("block" if plan == "free" else "no_refund")
    assert set(filter(None, h["features"].split(","))) == set(spec.features)
    assert h["failover"] == effective and h["service_mode"] == "private"
    assert h["webhook"] == "" and h["notify_endpoint"] == "" and int(h["created_ms"]) > 0
    assert await services.redis.sismember(services.keys.users(), user_id)
    record = await services.users.authenticate(api_key)
    assert record.user_id == user_id and record.plan == plan and record.failover is failover


async def test_plan_weight_comes_from_settings(settings, redis):
    from taskgate.services import build_services

    services = await build_services(settings.model_copy(update={"plan_weights": {"premium": 4}}))
    try:
        user_id, _ = await services.users.create("premium")
        assert (await user_hash(services, user_id))["weight"] == "4"
    finally:
        await services.close()


async def test_plan_change_rewrites_the_derived_fields(services):
    user_id, _ = await services.users.create("free")  # failover setting on, not effective on free
    assert (await user_hash(services, user_id))["failover"] == "0"
    record = await services.users.update(user_id, plan="premium")
    h = await user_hash(services, user_id)
    assert record.plan == "premium" and h["cap"] == "30" and h["relax_limit"] == "1500"
    assert h["incorrect_penalty"] == "no_refund" and "auto_failover" in h["features"]
    assert h["failover"] == "1"  # the stored setting now takes effect
    await services.users.update(user_id, failover=False)
    assert (await user_hash(services, user_id))["failover"] == "0"
    await services.users.update(user_id, plan="free", failover=True)
    h = await user_hash(services, user_id)
    assert h["cap"] == "3" and h["features"] == "" and h["failover"] == "0"


async def test_update_endpoints_and_service_mode(services):
    user_id, _ = await services.users.create("developer")
    record = await services.users.update(
        user_id,
        webhook_endpoint="https://hooks.example/t",
        notify_endpoint="https://hooks.example/n",
        service_mode="public",
    )
    assert record.webhook_endpoint == "https://hooks.example/t" and record.service_mode == "public"
    assert (await user_hash(services, user_id))["webhook"] == "https://hooks.example/t"
    for kwargs, field in (
        ({"webhook_endpoint": "ftp://x"}, "webhook_endpoint"),
        ({"service_mode": "secret"}, "service_mode"),
        ({"plan": "gold"}, "plan"),
    ):
        with pytest.raises(InvalidInput) as info:
            await services.users.update(user_id, **kwargs)
        assert info.value.field == field
    with pytest.raises(NotFound):
        await services.users.update("0" * 32, plan="free")


async def test_initial_wallets_go_through_the_ledger(services):
    user_id, _ = await services.users.create("developer", wallets={"credits": 700, "mj_quota": 200})
    shown = await services.users.show(user_id)
    assert shown["wallets"]["credits"] == {"available": 700, "frozen": 0, "consumed": 0}
    assert shown["wallets"]["mj_quota"]["available"] == 200
    assert shown["plan"] == "developer" and shown["failover_effective"] is True
    ledger = await services.wallets.ledger(user_id)
    assert sorted(e["unit"] for e in ledger if e.get("reason") == "initial") == ["credits", "mj_quota"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"plan": "gold"}, "plan"),
        ({"plan": "free", "wallets": {"dollars": 5}}, "wallets"),
        ({"plan": "free", "wallets": {"credits": -5}}, "wallets"),
        ({"plan": "free", "service_mode": "hidden"}, "service_mode"),
    ],
)
async def test_refused_create_writes_nothing(services, redis, keys, kwargs, field):
    before = await snapshot(redis, keys)
    plan = kwargs.pop("plan")
    with pytest.raises(InvalidInput) as info:
        await services.users.create(plan, **kwargs)
    assert info.value.field == field
    assert await snapshot(redis, keys) == before


async def test_keys_are_digests_and_can_be_rotated_and_revoked(services, redis, keys):
    user_id, first = await services.users.create("free")
    digest = hashlib.sha256(first.encode()).hexdigest()
    assert first.startswith("tg_") and len(first) > 40
    assert await redis.smembers(keys.user_api_keys(user_id)) == {digest.encode()}
    second = await services.users.rotate_key(user_id)
    assert second != first
    with pytest.raises(Unauthorized):
        await services.users.authenticate(first)
    assert (await services.users.authenticate(second)).user_id == user_id
    await services.users.revoke_key(second)  # by the key itself
    with pytest.raises(Unauthorized):
        await services.users.authenticate(second)
    third = await services.users.rotate_key(user_id)
    await services.users.revoke_key(hashlib.sha256(third.encode()).hexdigest())  # by its digest
    with pytest.raises(Unauthorized):
        await services.users.authenticate(third)
    assert await redis.smembers(keys.user_api_keys(user_id)) == set()
    with pytest.raises(NotFound):
        await services.users.revoke_key(third)


@pytest.mark.parametrize("key", [None, "", "tg_", "tg_" + "x" * 43, "sk-something", "tg_" + "a" * 500])
async def test_authenticate_refuses_unknown_keys(services, key):
    with pytest.raises(Unauthorized):
        await services.users.authenticate(key)


async def test_list_users(services):
    ids = {(await services.users.create(plan))[0] for plan in ("free", "premium")}
    listed = await services.users.list_users()
    assert {u["user_id"] for u in listed} == ids
    assert all("wallets" in u and "plan" in u for u in listed)
