"""The receiver helper answers 4xx, never 5xx, to a body it cannot read or trust."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from taskgate.webhooks.receiver import receiver_handler
from taskgate.webhooks.signing import sign

SECRET = "s3cret"


def _signed(body: bytes) -> dict[str, str]:
    ts = int(time.time())
    return {
        "webhook-id": "t:1",
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(SECRET, "t:1", ts, body),
    }


async def _client() -> tuple[TestClient, list[dict]]:
    seen: list[dict] = []

    async def on_task(task: dict) -> None:
        seen.append(task)

    app = web.Application()
    app.router.add_post("/hook", receiver_handler(SECRET, on_task))
    client = TestClient(TestServer(app))
    await client.start_server()
    return client, seen


async def test_good_delivery_forged_signature_lying_encoding_and_signed_garbage():
    client, seen = await _client()
    try:
        body = b'{"timestamp":1,"data":{"task_id":"t"}}'
        assert (await client.post("/hook", data=body, headers=_signed(body))).status == 200
        assert seen == [{"task_id": "t"}]
        forged = {**_signed(body), "webhook-signature": "v1,AAAA"}
        assert (await client.post("/hook", data=body, headers=forged)).status == 401
        lying = {**_signed(body), "Content-Encoding": "gzip", "Connection": "close"}  # not gzip
        resp = await client.post("/hook", data=body, headers=lying)
        assert resp.status == 400 and "unreadable" in (await resp.json())["error"]
        garbage = b"not json"
        resp = await client.post("/hook", data=garbage, headers=_signed(garbage))
        assert resp.status == 400 and (await resp.json())["error"] == "the body is not JSON"
        assert seen == [{"task_id": "t"}]
    finally:
        await client.close()
