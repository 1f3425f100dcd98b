"""Logs carry no secrets and no unbounded values (hardening: secrets and log size): tracebacks without
frame locals, registered secrets scrubbed by value (in exception messages too), every value and
every line capped, and a failing request logged without its request data."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest
import structlog

from taskgate.logging import LINE_CAP, REDACTED, VALUE_CAP, configure_logging, remember_secret

SECRET = "hook-secret-5a7d21"


@pytest.fixture(params=["json", "console"])
def sink(monkeypatch, request):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    configure_logging(request.param, "DEBUG")
    monkeypatch.undo()
    yield out
    logging.getLogger().handlers = []
    structlog.reset_defaults()


def _fail_with_secret_in_locals(body: dict) -> None:
    webhook_secret = body["secret"]  # a local that must never reach a log line
    raise RuntimeError(f"cannot sign with {webhook_secret}: {body!r}")


def test_tracebacks_have_no_locals_and_registered_secrets_are_scrubbed(sink):
    remember_secret(SECRET)
    log = structlog.get_logger("taskgate.probe")
    try:
        _fail_with_secret_in_locals({"secret": SECRET, "prompt": "a cat"})
    except RuntimeError:
        log.exception("job_failed")
        logging.getLogger("aiohttp.server").error("Error handling request", exc_info=True)
    text = sink.getvalue()
    assert text.count("_fail_with_secret_in_locals") >= 2  # both tracebacks name the frame ...
    assert SECRET not in text and REDACTED in text  # ... the message is scrubbed ...
    assert '"locals"' not in text and "webhook_secret =" not in text  # ... and no locals are shown


def test_every_value_and_every_line_is_capped(sink):
    log = structlog.get_logger("taskgate.probe")
    log.info("huge_value", blob="x" * 5_000_000)
    log.info("many_values", **{f"k{i}": "y" * (VALUE_CAP - 1) for i in range(40)})
    log.info("deep_value", nested=json.loads("[" * 500 + "]" * 500))
    logging.getLogger("aiohttp.access").info("GET %s", "/" + "z" * 1_000_000)
    lines = sink.getvalue().splitlines()
    assert lines and all(len(line) <= LINE_CAP for line in lines)
    assert any("huge_value" in line for line in lines) and any("many_values" in line for line in lines)
    assert any("log_line_truncated" in line for line in lines)


async def test_a_500_is_logged_without_request_data(make_client_and_sink):
    client, out, key = make_client_and_sink
    body = {
        "model": "midjourney",
        "task_type": "imagine",
        "input": {"prompt": "a private prompt"},
        "config": {"webhook_config": {"endpoint": "https://example.com/h", "secret": SECRET}},
    }
    resp = await client.post("/api/v1/task", json=body, headers={"x-api-key": key})
    assert resp.status == 500
    text = out.getvalue()
    failed = [json.loads(line) for line in text.splitlines() if '"request_failed"' in line]
    assert len(failed) == 1 and failed[0]["error"] == "RuntimeError" and failed[0]["where"]
    assert SECRET not in text and "private prompt" not in text and key not in text


@pytest.fixture
async def make_client_and_sink(make_client, services, monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    configure_logging("json", "DEBUG")
    monkeypatch.undo()
    _, key = await services.users.create("developer", wallets={"mj_quota": 100})

    async def broken(user, req, idempotency_key=None, **kwargs):
        raise RuntimeError(f"boom with {req.config.webhook_config.secret} and {req.input}")

    monkeypatch.setattr(services.tasks, "create", broken)
    yield await make_client(), out, key
    logging.getLogger().handlers = []
    structlog.reset_defaults()


async def test_a_backend_connection_error_is_a_500_not_a_disconnect(make_client, services, monkeypatch):
    _, key = await services.users.create("developer")

    async def refused(*args, **kwargs):
        raise ConnectionRefusedError("backend down")

    monkeypatch.setattr(services.tasks, "get_for_key", refused)
    client = await make_client()
    resp = await client.get("/api/v1/task/0b0e6c55-3c1c-4d5b-9b43-1b6f2e2f7e11", headers={"x-api-key": key})
    assert resp.status == 500 and (await resp.json())["message"] == "internal error"


async def test_account_credentials_are_scrubbed_by_value_in_the_job_that_loaded_them(services, sink):
    from pydantic import SecretStr

    from taskgate.pool.registry import AccountSpec

    credential = "upstream-cred-91b7e2f0"
    account_id = await services.accounts.add(AccountSpec(owner="shared", api_key=SecretStr(credential)))
    access = await services.accounts.access(account_id)
    log = structlog.get_logger("taskgate.worker.probe")
    log.warning("upstream_refused", detail=f"401 for Bearer {access.api_key.get_secret_value()}")
    text = sink.getvalue()
    assert "upstream_refused" in text and credential not in text
