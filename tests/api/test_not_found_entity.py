"""A script's not-found error names what was not found (issue 14): an unknown account is
"account not found", never "task not found"."""

from __future__ import annotations

import pytest

from taskgate.errors import NotFound
from taskgate.store import script_api
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts

TOKEN = {"x-admin-token": "test-admin-token"}


async def test_unknown_account_in_admin_pool_operations_says_account(client):
    for action in ("pause", "resume"):
        resp = await client.post(f"/admin/v1/accounts/nope/{action}", headers=TOKEN)
        body = await resp.json()
        assert resp.status == 404 and body["message"] == "account not found: nope", body


async def test_each_script_names_its_entity(scripts: Scripts, keys: Keys) -> None:
    cases = [
        (
            "account",
            lambda: script_api.set_account_state(
                scripts, keys, account_id="a0", state="disabled", until_ms=0, by="operator", reason=""
            ),
        ),
        ("user", lambda: script_api.record_incorrect(scripts, keys, user_id="u0")),
        ("user", lambda: script_api.rotate_api_key(scripts, keys, digest="d0", user_id="u0")),
        ("api key", lambda: script_api.revoke_api_key(scripts, keys, digest="d0")),
        ("task", lambda: script_api.requeue_task(scripts, keys, task_id="t0")),
        ("task", lambda: script_api.cancel_task(scripts, keys, task_id="t0", user_id="u0")),
        ("task", lambda: script_api.cancel_tasks(scripts, keys, user_id="u0", task_ids=["t0"])),
        ("task", lambda: script_api.redeliver_webhook(scripts, keys, task_id="t0")),
        (
            "task",
            lambda: script_api.finish_task(
                scripts, keys, task_id="t0", attempt=1, outcome="failed", max_attempts=3
            ),
        ),
    ]
    for entity, call in cases:
        with pytest.raises(NotFound) as caught:
            await call()
        assert caught.value.what == entity
        assert caught.value.message.startswith(f"{entity} not found")
