"""Admin API (x-admin-token) and the `taskgate admin` CLI forms that scripts rely on."""

from __future__ import annotations

import hashlib
import json

import pytest

from taskgate.cli import main
from tests.api.conftest import snapshot

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
    # the raw key is stored nowhere, only its digest
    async for key in redis.scan_iter(match=keys.pattern()):
        if (await redis.type(key)) == b"string":
            assert api_key.encode() not in (await redis.get(key))
        assert api_key.encode() not in key
    assert await redis.get(keys.api_key(hashlib.sha256(api_key.encode()).hexdigest())) == user_id.encode()

    resp = await client.post(f"/admin/v1/users/{user_id}/wallets",
                             json={"unit": "credits", "amount": 100, "reason": "goodwill"}, headers=TOKEN)
    assert (await resp.json())["data"]["available"] == 800
    resp = await client.post(f"/admin/v1/users/{user_id}/wallets",
                             json={"unit": "credits", "amount": 5, "reason": ""}, headers=TOKEN)
    assert resp.status == 400
    resp = await client.post(f"/admin/v1/users/{user_id}/wallets",
                             json={"unit": "credits", "amount": -10_000, "reason": "x", "kind": "adjust"},
                             headers=TOKEN)
    assert resp.status == 402

    resp = await client.post("/admin/v1/accounts", headers=TOKEN, json={
        "owner": "shared", "provider": "sim", "capacity": 3, "api_key": "upstream-secret-1",
        "models": ["midjourney"]})
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
    for body in ({"owner": "shared", "capacity": 0}, {"owner": "nobody", "capacity": 1},
                 {"owner": "shared", "capacity": 1, "base_url": "file:///etc"}, {"capacity": 1, "extra": 1}):
        resp = await client.post("/admin/v1/accounts", json=body, headers=TOKEN)
        assert resp.status == 400, body
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
    code, out, _ = run_cli(capsys, "admin", "users", "create", "--plan", "developer", "--credits", "2100",
                           "--mj-quota", "50", "--json")
    assert code == 0
    created = json.loads(out)
    assert set(created) == {"user_id", "api_key"}
    code, out, _ = run_cli(capsys, "admin", "accounts", "add", "--owner", "shared", "--provider", "sim",
                           "--capacity", "4", "--models", "midjourney,flux", "--json")
    assert code == 0 and set(json.loads(out)) == {"account_id"}
    code, out, _ = run_cli(capsys, "admin", "accounts", "add", "--owner", created["user_id"], "--provider",
                           "sim", "--capacity", "2", "--backup", "--json")
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
    code, _, err = run_cli(capsys, "admin", "accounts", "add", "--owner", "nobody", "--capacity", "1", "--json")
    assert code == 2 and "owner" in err
    code, _, err = run_cli(capsys, "admin", "users", "topup", "nope", "--amount", "5", "--reason", "x")
    assert code == 2
