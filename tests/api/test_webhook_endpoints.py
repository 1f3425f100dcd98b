"""Webhook endpoints through the API (hardening: SSRF, §7): a forbidden endpoint is refused at task
create with a 400 naming config.webhook_config.endpoint and nothing stored; users' default webhook
and notification endpoints are checked the same way; the canonical form is what is stored."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import snapshot
from tests.webhooks.test_ssrf_aliases import ALIASES

IMAGINE = {
    "model": "midjourney",
    "task_type": "imagine",
    "input": {"prompt": "a cat", "process_mode": "fast"},
}


@pytest.mark.parametrize("host", [*list(ALIASES)[:12], "localhost", "[::ffff:10.0.0.1]", "1.2.3.4.5"])
async def test_create_refuses_a_forbidden_endpoint_and_stores_nothing(
    make_client, services, redis, keys, host
):
    client = await make_client(webhook_allow_private=False)
    services.tasks.settings = services.tasks.settings.model_copy(update={"webhook_allow_private": False})
    _, key = await services.users.create("developer", wallets={"mj_quota": 100})
    body = {**IMAGINE, "config": {"webhook_config": {"endpoint": f"http://{host}:9/h", "secret": "s3cret-x"}}}
    before = await snapshot(redis, keys)
    resp = await client.post("/api/v1/task", json=body, headers={"x-api-key": key})
    data = await resp.json()
    assert resp.status == 400 and data["detail"]["field"] == "config.webhook_config.endpoint", data
    assert await snapshot(redis, keys) == before


async def test_create_stores_the_canonical_endpoint(client, services, redis, keys):
    _, key = await services.users.create("developer", wallets={"mj_quota": 100})
    body = {**IMAGINE, "config": {"webhook_config": {"endpoint": "http://１２７.０.０.１:9/h"}}}
    resp = await client.post("/api/v1/task", json=body, headers={"x-api-key": key})  # private allowed
    task_id = (await resp.json())["data"]["task_id"]
    assert await redis.hget(keys.task(task_id), "webhook_endpoint") == b"http://127.0.0.1:9/h"


@pytest.mark.parametrize("field", ["webhook_endpoint", "notify_endpoint"])
async def test_user_endpoints_are_checked(make_client, services, redis, keys, field):
    client = await make_client()
    services.users.allow_private_webhooks = False
    user_id, _ = await services.users.create("developer")
    headers = {"x-admin-token": "test-admin-token"}
    for url in ("http://0x7f.1/h", "http://①②⑦.0.0.1/h", "ftp://example.com/x"):
        before = await snapshot(redis, keys)
        resp = await client.patch(f"/admin/v1/users/{user_id}", json={field: url}, headers=headers)
        data = await resp.json()
        assert resp.status == 400 and data["detail"]["field"] == field, data
        assert await snapshot(redis, keys) == before
    resp = await client.patch(
        f"/admin/v1/users/{user_id}", json={field: "https://Example.com/h"}, headers=headers
    )
    assert resp.status == 200 and (await resp.json())["data"][field] == "https://example.com/h"


def test_cli_checks_user_endpoints(monkeypatch, redis_url, prefix, redis, capsys):
    from taskgate.cli import main

    monkeypatch.setenv("TASKGATE_REDIS_URL", redis_url)
    monkeypatch.setenv("TASKGATE_KEY_PREFIX", prefix)
    monkeypatch.delenv("TASKGATE_WEBHOOK_ALLOW_PRIVATE", raising=False)

    def run(*argv):
        with pytest.raises(SystemExit) as exit_info:
            main(list(argv))
        out = capsys.readouterr()
        return exit_info.value.code, out.out, out.err

    code, out, _ = run("admin", "users", "create", "--plan", "free", "--json")
    user_id = json.loads(out)["user_id"]
    for flag in ("--webhook-endpoint", "--notify-endpoint"):
        code, _, err = run("admin", "users", "update", user_id, flag, "http://①②⑦.0.0.1/h", "--json")
        assert code == 2 and "endpoint" in err and "private or special" in err
    code, out, _ = run(
        "admin", "users", "update", user_id, "--webhook-endpoint", "https://Example.com/h", "--json"
    )
    assert code == 0 and json.loads(out)["webhook_endpoint"] == "https://example.com/h"
