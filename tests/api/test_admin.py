"""Admin API (x-admin-token) and the `taskgate admin` CLI forms that scripts rely on."""

from __future__ import annotations

import hashlib
import json

import pytest

from taskgate.cli import main
from tests.api.conftest import all_values, snapshot

TOKEN = {"x-admin-token": "test-admin-token"}


async def test_admin_api_requires_the_token(client, redis, keys):
    before = await snapshot(redis, keys)
    for headers in ({}, {"x-admin-token": "wrong"}):
        resp = await client.post("/admin/v1/users", json={"plan": "free"}, headers=headers)
        assert resp.status == 401 and (await resp.json())["code"] == 401
    assert await snapshot(redis, keys) == before


async def test_admin_api_users_wallets_accounts(client, redis, keys):
    resp = await client.post("/admin/v1/users", json={"plan": "premium", "credits": 700}, headers=TOKEN)
    created = (await resp.json())["data"]
    user_id, api_key = created["user_id"], created["api_key"]
    assert api_key.startswith("tg_")
    # the raw key is stored nowhere (no key name, no value of any type), only its digest
    stored = await all_values(redis, keys)
    assert user_id.encode() in stored and api_key.encode() not in stored
    assert api_key.split("_", 1)[1].encode() not in stored
    assert await redis.get(keys.api_key(hashlib.sha256(api_key.encode()).hexdigest())) == user_id.encode()

    resp = await client.post(
        f"/admin/v1/users/{user_id}/wallets",
        json={"unit": "credits", "amount": 100, "reason": "goodwill"},
        headers=TOKEN,
    )
    assert (await resp.json())["data"]["available"] == 800
    resp = await client.post(
        f"/admin/v1/users/{user_id}/wallets",
        json={"unit": "credits", "amount": 5, "reason": ""},
        headers=TOKEN,
    )
    assert resp.status == 400
    resp = await client.post(
        f"/admin/v1/users/{user_id}/wallets",
        json={"unit": "credits", "amount": -10_000, "reason": "x", "kind": "adjust"},
        headers=TOKEN,
    )
    assert resp.status == 402

    resp = await client.post(
        "/admin/v1/accounts",
        headers=TOKEN,
        json={
            "owner": "shared",
            "provider": "sim",
            "capacity": 3,
            "api_key": "upstream-secret-1",
            "models": ["midjourney"],
        },
    )
    account_id = (await resp.json())["data"]["account_id"]
    listed = (await (await client.get("/admin/v1/accounts", headers=TOKEN)).json())["data"]
    assert [a["id"] for a in listed] == [account_id]
    assert "upstream-secret-1" not in json.dumps(listed)
    resp = await client.post(f"/admin/v1/accounts/{account_id}/pause", headers=TOKEN)
    assert (await resp.json())["data"]["state"] == "disabled"
    resp = await client.post(f"/admin/v1/accounts/{account_id}/resume", headers=TOKEN)
    assert (await resp.json())["data"]["state"] == "active"
    pool = (await (await client.get("/admin/v1/pool", headers=TOKEN)).json())["data"]
    assert pool["capacity"] == 3
    assert (await client.delete(f"/admin/v1/accounts/{account_id}", headers=TOKEN)).status == 200
    assert (await client.get(f"/admin/v1/accounts/{account_id}", headers=TOKEN)).status == 404

    resp = await client.post(f"/admin/v1/users/{user_id}/keys", headers=TOKEN)
    new_key = (await resp.json())["data"]["api_key"]
    assert (await client.get("/api/v1/account", headers={"x-api-key": api_key})).status == 401
    assert (await client.get("/api/v1/account", headers={"x-api-key": new_key})).status == 200


async def test_admin_api_refuses_bad_accounts(client, redis, keys):
    before = await snapshot(redis, keys)
    for body in (
        {"owner": "shared", "capacity": 0},
        {"owner": "nobody", "capacity": 1},
        {"owner": "shared", "capacity": 1, "base_url": "file:///etc"},
        {"capacity": 1, "extra": 1},
    ):
        resp = await client.post("/admin/v1/accounts", json=body, headers=TOKEN)
        assert resp.status == 400, body
    # a rule over two fields still names the field, in plain words
    resp = await client.post("/admin/v1/accounts", json={"provider": "goapi", "capacity": 1}, headers=TOKEN)
    refused = await resp.json()
    assert resp.status == 400 and refused["detail"]["field"] == "base_url"
    assert refused["message"] == "invalid base_url: is required for provider goapi"
    assert await snapshot(redis, keys) == before


def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


@pytest.fixture
def cli_env(monkeypatch, redis_url, prefix, redis):
    monkeypatch.setenv("TASKGATE_REDIS_URL", redis_url)
    monkeypatch.setenv("TASKGATE_KEY_PREFIX", prefix)


def test_cli_forms_and_json_outputs(cli_env, capsys):
    code, out, _ = run_cli(
        capsys,
        "admin",
        "users",
        "create",
        "--plan",
        "developer",
        "--credits",
        "2100",
        "--mj-quota",
        "50",
        "--json",
    )
    assert code == 0
    created = json.loads(out)
    assert set(created) == {"user_id", "api_key"}
    code, out, _ = run_cli(
        capsys,
        "admin",
        "accounts",
        "add",
        "--owner",
        "shared",
        "--provider",
        "sim",
        "--capacity",
        "4",
        "--models",
        "midjourney,flux",
        "--json",
    )
    assert code == 0 and set(json.loads(out)) == {"account_id"}
    code, out, _ = run_cli(
        capsys,
        "admin",
        "accounts",
        "add",
        "--owner",
        created["user_id"],
        "--provider",
        "sim",
        "--capacity",
        "2",
        "--backup",
        "--json",
    )
    assert code == 0
    code, out, _ = run_cli(capsys, "admin", "users", "show", created["user_id"], "--json")
    shown = json.loads(out)
    assert shown["plan"] == "developer" and shown["wallets"]["credits"]["available"] == 2100
    assert shown["wallets"]["mj_quota"]["available"] == 50
    code, out, _ = run_cli(capsys, "admin", "accounts", "list", "--owner", created["user_id"], "--json")
    [acc] = json.loads(out)
    assert acc["backup"] is True and acc["capacity"] == 2
    code, out, _ = run_cli(capsys, "admin", "users", "list")
    assert code == 0 and "developer" in out


def test_cli_bad_input_exits_2_with_a_message(cli_env, capsys):
    code, _, err = run_cli(capsys, "admin", "users", "show", "nope", "--json")
    assert code == 2 and "not found" in err
    code, _, err = run_cli(
        capsys, "admin", "accounts", "add", "--owner", "nobody", "--capacity", "1", "--json"
    )
    assert code == 2 and "owner" in err
    code, _, err = run_cli(capsys, "admin", "users", "topup", "nope", "--amount", "5", "--reason", "x")
    assert code == 2


async def test_admin_api_user_changes_and_key_revocation(client, redis, keys):
    before = await snapshot(redis, keys)
    for body in (
        {"plan": "gold"},
        {"plan": "free", "credits": -1},
        {"plan": "free", "wallets": {"x": 1}},
        {"plan": "free", "colour": "red"},
        {"credits": 5},
    ):
        resp = await client.post("/admin/v1/users", json=body, headers=TOKEN)
        assert resp.status == 400 and (await resp.json())["detail"]["field"], body
    assert await snapshot(redis, keys) == before

    resp = await client.post(
        "/admin/v1/users", json={"plan": "free", "wallets": {"credits": 70}}, headers=TOKEN
    )
    user_id, api_key = (lambda d: (d["user_id"], d["api_key"]))((await resp.json())["data"])
    resp = await client.patch(
        f"/admin/v1/users/{user_id}",
        headers=TOKEN,
        json={"plan": "premium", "webhook_endpoint": "https://hooks.example/x"},
    )
    shown = (await resp.json())["data"]
    assert shown["plan"] == "premium" and shown["concurrency"] == 30 and shown["failover_effective"] is True
    assert shown["webhook_endpoint"] == "https://hooks.example/x"
    assert (await redis.hget(keys.user(user_id), "cap")) == b"30"
    resp = await client.patch(f"/admin/v1/users/{user_id}", json={"plan": "gold"}, headers=TOKEN)
    assert resp.status == 400
    assert (await client.patch("/admin/v1/users/nobody", json={}, headers=TOKEN)).status == 404
    listed = (await (await client.get("/admin/v1/users", headers=TOKEN)).json())["data"]
    assert [u["user_id"] for u in listed] == [user_id] and listed[0]["wallets"]["credits"]["available"] == 70

    digest = hashlib.sha256(api_key.encode()).hexdigest()
    assert (await client.delete(f"/admin/v1/keys/{digest}", headers=TOKEN)).status == 200
    assert (await client.get("/api/v1/account", headers={"x-api-key": api_key})).status == 401
    assert (await client.delete(f"/admin/v1/keys/{digest}", headers=TOKEN)).status == 404


async def test_admin_api_account_updates(client, redis, keys):
    resp = await client.post(
        "/admin/v1/accounts",
        headers=TOKEN,
        json={"owner": "shared", "provider": "sim", "capacity": 2, "api_key": "secret-one"},
    )
    account_id = (await resp.json())["data"]["account_id"]
    resp = await client.patch(
        f"/admin/v1/accounts/{account_id}",
        headers=TOKEN,
        json={"capacity": 5, "models": ["midjourney", "flux"], "api_key": "secret-two"},
    )
    updated = (await resp.json())["data"]
    assert resp.status == 200 and updated["capacity"] == 5 and updated["models"] == ["midjourney", "flux"]
    assert "secret" not in json.dumps(updated)
    assert await redis.get(keys.account_secret(account_id)) == b"secret-two"
    before = await snapshot(redis, keys)
    for body in (
        {"capacity": 0},
        {"models": ["no such model!"]},
        {"models": ["nosuchmodel"]},
        {"owner": "someone"},
        {"base_url": "x"},
    ):
        resp = await client.patch(f"/admin/v1/accounts/{account_id}", json=body, headers=TOKEN)
        assert resp.status == 400 and (await resp.json())["code"] == 400, body
    resp = await client.post("/admin/v1/accounts", json={"models": ["gpt-9"]}, headers=TOKEN)
    refused = await resp.json()
    assert resp.status == 400 and refused["detail"]["field"] == "models" and "gpt-9" in refused["message"]
    assert await snapshot(redis, keys) == before
    resp = await client.patch("/admin/v1/accounts/nope", json={"capacity": 3}, headers=TOKEN)
    assert resp.status == 404


async def test_admin_webhook_attempts_endpoint(client):
    import importlib.util

    resp = await client.get("/admin/v1/tasks/0b0e6c55-3c1c-4d5b-9b43-1b6f2e2f7e11/webhooks", headers=TOKEN)
    body = await resp.json()
    if importlib.util.find_spec("taskgate.webhooks.outbox") is None:
        assert resp.status == 501 and "webhook" in body["message"]
    else:
        assert resp.status == 200 and body["data"] == []
    assert (await client.get("/admin/v1/tasks/x/webhooks")).status == 401


def test_cli_user_update_revoke_and_tables(cli_env, capsys):
    code, out, _ = run_cli(capsys, "admin", "users", "create", "--plan", "free", "--no-failover", "--json")
    created = json.loads(out)
    code, out, _ = run_cli(
        capsys, "admin", "users", "update", created["user_id"], "--plan", "premium", "--failover", "--json"
    )
    shown = json.loads(out)
    assert code == 0 and shown["plan"] == "premium" and shown["failover"] is True
    code, out, _ = run_cli(
        capsys,
        "admin",
        "users",
        "topup",
        created["user_id"],
        "--unit",
        "credits",
        "--amount",
        "700",
        "--reason",
        "welcome",
        "--json",
    )
    assert code == 0 and json.loads(out)["available"] == 700
    code, out, _ = run_cli(capsys, "admin", "users", "rotate-key", created["user_id"], "--json")
    rotated = json.loads(out)
    assert code == 0 and rotated["api_key"] != created["api_key"]
    code, out, _ = run_cli(capsys, "admin", "users", "revoke-key", rotated["api_key"], "--json")
    assert code == 0 and json.loads(out) == {"revoked": True}
    code, out, _ = run_cli(capsys, "admin", "pool")
    assert code == 0 and "capacity" in out
    code, out, _ = run_cli(capsys, "admin", "accounts", "list")
    assert code == 0 and out.strip() == "(none)"


def test_cli_refusals(cli_env, capsys):
    code, out, err = run_cli(capsys, "admin", "users", "create", "--plan", "gold", "--json")
    assert code == 2 and out == "" and "plan" in err
    code, _, err = run_cli(capsys, "admin", "users", "create", "--json")  # argparse: --plan is required
    assert code == 2 and "--plan" in err
    code, _, err = run_cli(capsys, "admin", "accounts", "add", "--capacity", "0", "--json")
    assert code == 2 and "capacity" in err
    code, _, err = run_cli(capsys, "admin", "accounts", "pause", "nope")
    assert code == 2 and "not found" in err
    code, _, err = run_cli(capsys, "admin", "accounts", "add", "--provider", "goapi", "--capacity", "1")
    assert code == 2 and err == "error: invalid base_url: is required for provider goapi\n"
    code, _, err = run_cli(capsys, "admin", "accounts", "add", "--capacity", "1", "--models", "a b")
    assert code == 2 and err.startswith("error: invalid models: model 'a b'") and "Value error" not in err


def test_cli_without_redis_exits_1(monkeypatch, capsys, prefix):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("TASKGATE_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    monkeypatch.setenv("TASKGATE_KEY_PREFIX", prefix)
    monkeypatch.setenv("TASKGATE_REDIS_RETRY_S", "0.5")  # a compressed clock: give up after 0.5 s, not 15
    code, out, err = run_cli(capsys, "admin", "users", "list", "--json")
    assert code == 1 and out == "" and "error" in err


@pytest.mark.parametrize("kind,amount", [("top_up", "1000000000001"), ("adjust", "-1000000000001")])
def test_cli_topup_beyond_the_amount_bound_is_refused(cli_env, capsys, kind, amount):
    code, out, _ = run_cli(capsys, "admin", "users", "create", "--plan", "free", "--json")
    user_id = json.loads(out)["user_id"]
    args = ("--amount", amount, "--reason", "typo", "--kind", kind, "--json")
    code, out, err = run_cli(capsys, "admin", "users", "topup", user_id, *args)
    assert code == 2 and out == "" and "amount" in err and "1000000000000" in err
    code, out, _ = run_cli(capsys, "admin", "users", "show", user_id, "--json")
    assert json.loads(out)["wallets"]["credits"]["available"] == 0
