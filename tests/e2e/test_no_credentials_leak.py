"""Account credentials never appear in any API response or log line (S8 registry, §10 logs)."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest
import structlog
from pydantic import SecretStr

from taskgate.logging import configure_logging
from taskgate.pool.registry import AccountSpec


@pytest.fixture
def log_sink(monkeypatch):
    sink = io.StringIO()
    monkeypatch.setattr(sys, "stderr", sink)
    configure_logging("json", "DEBUG")
    monkeypatch.undo()
    yield sink
    logging.getLogger().handlers = []
    structlog.reset_defaults()


async def test_credentials_absent_from_responses_and_logs(system, log_sink):
    secret = "upstream-credential-7c1e9a"
    user_id, key = await system.user("developer", wallets={"mj_quota": 100}, failover=True)
    acc = await system.services.accounts.add(
        AccountSpec(
            owner=user_id, provider="sim", base_url=system.sim_url, api_key=SecretStr(secret), capacity=2
        )
    )
    await system.shared_account(capacity=2)  # where the task fails over once its own account is out
    headers = {"x-admin-token": "test-admin-token"}
    responses = []
    for path in (
        "/admin/v1/accounts",
        f"/admin/v1/accounts/{acc}",
        "/admin/v1/pool",
        f"/admin/v1/users/{user_id}",
    ):
        status, body = await system.call("GET", path, headers=headers)
        assert status == 200
        responses.append(json.dumps(body))
    _, body = await system.imagine(
        key, "mine [sim duration=0.05 outcome=captcha]", config={"service_mode": "private"}
    )
    task = await system.wait_final(key, body["data"]["task_id"])
    responses.append(json.dumps(task))
    _, events = await system.call("GET", "/api/v1/account/notifications", key)
    responses.append(json.dumps(events))
    assert events["data"] and events["data"][0]["state"] == "needs_captcha"
    for text in responses:
        assert secret not in text
    logs = log_sink.getvalue()
    assert "upstream_error" in logs or "account_health_changed" in logs  # the logs did run
    assert secret not in logs
