"""configure_logging: both renderers, stdlib loggers routed through structlog, secrets scrubbed.

Each case runs in a fresh interpreter, so the process-wide logging set-up is the real one (stderr,
handlers, structlog defaults) and nothing leaks into the rest of the test session."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from taskgate.logging import REDACTED, resolve_profile, scrub_secrets

API_KEY = "tg_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

SCRIPT = textwrap.dedent(
    """
    import logging, sys
    import structlog
    from taskgate.logging import configure_logging

    configure_logging(sys.argv[1], "INFO")
    configure_logging(sys.argv[1], "INFO")  # idempotent: still one line per event
    log = structlog.get_logger("taskgate.probe")
    structlog.contextvars.bind_contextvars(task_id="task-1")
    log.info("key_created", user_id="u1", api_key=sys.argv[2], note="key " + sys.argv[2])
    log.info("webhook_signed", headers={"Authorization": "Bearer abc", "x-api-key": "k1"},
             secret_hint=sys.argv[3], body="signed with " + sys.argv[3], password="hunter2")
    log.debug("hidden_event")
    logging.getLogger("aiohttp.access").info("GET /api/v1/task key=%s", sys.argv[2])
    logging.getLogger("arq.worker").warning("job %s retried", "j1")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("task_crashed")
    """
)


def run_probe(profile: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, profile, API_KEY, WHSEC],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout == ""  # logs go to stderr only
    return proc.stderr


def test_json_profile_renders_one_json_object_per_event_and_scrubs_secrets() -> None:
    err = run_probe("json")
    assert API_KEY not in err and WHSEC not in err and "hunter2" not in err and "Bearer abc" not in err
    events = [json.loads(line) for line in err.splitlines() if line.strip()]
    by_event = {e["event"]: e for e in events}
    assert len(events) == len(by_event) == 5  # debug filtered out; configure twice, no duplicates
    created = by_event["key_created"]
    assert created["api_key"] == REDACTED and created["note"] == f"key {REDACTED}"
    assert created["user_id"] == "u1" and created["task_id"] == "task-1"
    assert created["level"] == "info" and created["logger"] == "taskgate.probe"
    assert created["timestamp"].endswith("Z")
    signed = by_event["webhook_signed"]
    assert signed["headers"] == {"Authorization": REDACTED, "x-api-key": REDACTED}
    assert signed["secret_hint"] == REDACTED and signed["password"] == REDACTED
    assert signed["body"] == f"signed with {REDACTED}"
    access = by_event[f"GET /api/v1/task key={REDACTED}"]
    assert access["logger"] == "aiohttp.access" and access["level"] == "info"
    assert by_event["job j1 retried"]["logger"] == "arq.worker"
    crashed = by_event["task_crashed"]
    assert crashed["level"] == "error"
    assert crashed["exception"][0]["exc_type"] == "ValueError"  # dict_tracebacks


def test_console_profile_renders_text_and_scrubs_secrets() -> None:
    err = run_probe("console")
    assert API_KEY not in err and WHSEC not in err and "hunter2" not in err
    lines = err.splitlines()
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[0])
    assert any("key_created" in line and "user_id=u1" in line for line in lines)
    assert any("GET /api/v1/task" in line and "aiohttp.access" in line for line in lines)
    assert any("job j1 retried" in line for line in lines)
    assert "ValueError: boom" in err
    assert "hidden_event" not in err


def test_auto_profile_is_json_when_stderr_is_not_a_terminal() -> None:
    err = run_probe("auto")  # captured: a pipe, not a TTY
    assert json.loads(err.splitlines()[0])["event"] == "key_created"


def test_scrub_secrets_walks_nested_values_and_keeps_the_rest() -> None:
    event = {
        "event": "account_added",
        "credentials": {"cookie": "c"},
        "accounts": [{"id": "a1", "token": "t"}, f"uses {API_KEY}"],
        "admin_token": "x",
        "X-Api-Key": "y",
        "client_secret": "z",
        "count": 3,
        "user": "tg_short",  # too short to be a key
    }
    out = scrub_secrets(None, "info", dict(event))
    assert out["credentials"] == REDACTED
    assert out["accounts"] == [{"id": "a1", "token": REDACTED}, f"uses {REDACTED}"]
    assert out["admin_token"] == out["X-Api-Key"] == out["client_secret"] == REDACTED
    assert out["count"] == 3 and out["user"] == "tg_short" and out["event"] == "account_added"


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="log profile"):
        resolve_profile("xml")
