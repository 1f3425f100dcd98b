"""The Python client against the real system."""

from __future__ import annotations

import pytest

from taskgate.client import TaskgateClient, TaskgateClientError


async def test_client_create_wait_cancel_account(system):
    _, key = await system.user("developer", wallets={"mj_quota": 100})
    await system.shared_account(capacity=1)
    async with TaskgateClient(system.api_url, key) as client:
        task = await client.create(
            "midjourney", "imagine", {"prompt": "a [sim duration=0.1]"}, idempotency_key="k1"
        )
        again = await client.create(
            "midjourney", "imagine", {"prompt": "a [sim duration=0.1]"}, idempotency_key="k1"
        )
        assert again["task_id"] == task["task_id"]
        done = await client.wait(task["task_id"], timeout_s=20, poll_s=0.05)
        assert done["status"] == "completed"
        account = await client.account()
        assert account["wallets"]["mj_quota"]["consumed"] == 14
        with pytest.raises(TaskgateClientError) as err:
            await client.get("00000000-0000-0000-0000-000000000000")
        assert err.value.status == 404
    async with TaskgateClient(system.api_url, "tg_wrong") as bad:
        with pytest.raises(TaskgateClientError) as err:
            await bad.account()
        assert err.value.status == 401
