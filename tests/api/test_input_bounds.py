"""Bad input is a 4xx naming the field, never a 5xx, and changes nothing (hardening: bad input):
nesting depth, integer and float literals, string and key sizes, the number of values in
``input``, lone surrogates, and header bytes that are not UTF-8 (sent over a raw socket)."""

from __future__ import annotations

import asyncio
import json

import pytest

from taskgate.api.requests import BODY_BOUNDS, INPUT_BOUNDS
from tests.api.conftest import snapshot


def create(extra_input: str = "", extra: str = "") -> bytes:
    head = '{"model":"midjourney","task_type":"imagine","input":{"prompt":"a cat"'
    text = head + extra_input + "}" + extra + "}"
    return text.encode("utf-8", "surrogatepass")


CASES = [
    ("[" * 2000 + "]" * 2000, "body", "nested more than"),  # used to be a RecursionError
    (create(',"p":' + "[" * 300 + "]" * 300), "input.p", "nested more than 32 levels"),
    (create(',"p":' + '{"a":' * 9 + "1" + "}" * 9), "input.p", "nested more than 8 levels"),
    (create("", ',"config":{"x":' + "[" * 40 + "]" * 40 + "}"), "config.x", "nested more than 32"),
    (create(',"seed":' + "1" * 400), "input.seed", "integers must lie within"),
    (create(',"seed":9007199254740992'), "input.seed", "integers must lie within"),
    ('{"x": ' + "9" * 3000 + "}", "x", "integers must lie within"),
    (create(',"n":[1e999]'), "input.n[0]", "finite"),
    (create(',"n":NaN'), "input.n", "NaN is not a JSON number"),
    (create("", ',"config":{"x":-Infinity}'), "config.x", "-Infinity is not a JSON number"),
    (create(',"n":1.' + "5" * 60), "input.n", "at most 40 characters"),
    (create(',"p2":"\\ud83d"'), "input.p2", "lone surrogate"),
    (create(',"\\udc80":1'), "input", "lone surrogate"),
    (
        create("", ',"config":{"webhook_config":{"endpoint":"","secret":"\\ud800"}}'),
        "config.webhook_config.secret",
        "lone surrogate",
    ),
    ('{"model":"\\ud800","task_type":"imagine","input":{}}', "model", "lone surrogate"),
    (create("," + ",".join(f'"k{i}":{i}' for i in range(INPUT_BOUNDS.max_items))), "input", "values in all"),
    (create(',"k":"' + "x" * 20 + '"').replace(b'"k"', b'"' + b"k" * 200 + b'"'), "input", "a key longer"),
    ("\xff\xfe{}", "body", "not valid JSON"),
]


@pytest.fixture
async def user(services):
    return await services.users.create("developer", wallets={"mj_quota": 100})


@pytest.mark.parametrize(("raw", "field", "why"), CASES, ids=range(len(CASES)))
async def test_hostile_bodies_are_400_naming_the_field(make_client, user, redis, keys, raw, field, why):
    client = await make_client(body_limit_bytes=64 * 1024)
    data = raw if isinstance(raw, bytes) else raw.encode("latin-1" if raw.startswith("\xff") else "utf-8")
    before = await snapshot(redis, keys)
    resp = await client.post("/api/v1/task", data=data, headers={"x-api-key": user[1]})
    body = await resp.json()
    assert resp.status == 400 and body["code"] == 400, body
    assert body["detail"]["field"] == field and why in body["detail"]["reason"], body
    assert await snapshot(redis, keys) == before


def test_bounds_are_generic_and_stricter_for_input():
    assert INPUT_BOUNDS.max_depth < BODY_BOUNDS.max_depth and INPUT_BOUNDS.max_items < BODY_BOUNDS.max_items


async def _raw(port: int, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + b"\r\n\r\n" + body)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


@pytest.mark.parametrize(
    ("header", "status", "field"),
    [
        (b"Idempotency-Key: \xff\xfe-key", 400, "Idempotency-Key"),
        (b"x-api-key: tg_\xc3\x28xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 401, None),
    ],
)
async def test_header_bytes_that_are_not_utf8_are_4xx(client, user, redis, keys, header, status, field):
    body = json.dumps({"model": "midjourney", "task_type": "imagine", "input": {"prompt": "a"}}).encode()
    key = b"" if header.startswith(b"x-api-key") else b"x-api-key: " + user[1].encode() + b"\r\n"
    head = (
        b"POST /api/v1/task HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        + key
        + header
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close"
    )
    before = await snapshot(redis, keys)
    got, payload = await _raw(client.port, head, body)
    answer = json.loads(payload)
    assert got == status and answer["code"] == status
    if field:
        assert answer["detail"]["field"] == field
    assert await snapshot(redis, keys) == before


async def test_admin_token_and_request_id_with_bad_bytes(client):
    head = (
        b"GET /admin/v1/pool HTTP/1.1\r\nHost: t\r\nx-admin-token: \xff\xff\r\n"
        b"x-request-id: \xe2\x80\xae<script>\r\nConnection: close"
    )
    status, payload = await _raw(client.port, head)
    assert status == 401 and json.loads(payload)["code"] == 401


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/admin/v1/users", {"plan": "free", "credits": 2**53 - 1}, "credits"),
        ("/admin/v1/users", {"plan": "free", "wallets": {"credits": 10**13}}, "wallets.credits"),
        (
            "/admin/v1/users/{user}/wallets",
            {"unit": "credits", "amount": 10**12 + 1, "reason": "x"},
            "amount",
        ),
    ],
)
async def test_admin_amounts_are_bounded(client, user, services, redis, keys, path, body, field):
    user_id, _ = await services.users.create("free")
    before = await snapshot(redis, keys)
    headers = {"x-admin-token": "test-admin-token"}
    resp = await client.post(path.format(user=user_id), json=body, headers=headers)
    data = await resp.json()
    assert resp.status == 400 and data["detail"]["field"] == field, data  # was a 500 (Redis overflow)
    assert await snapshot(redis, keys) == before


@pytest.mark.parametrize(
    "path",
    [
        "/admin/v1/users/%ff%fe",
        "/api/v1/task/%ED%A0%80",
        "/admin/v1/keys/%ff%00",
        "/admin/v1/tasks/%ff/webhooks",
        "/api/v1/tasks?page=%ff&size=%00",
    ],
)
async def test_paths_that_do_not_decode_are_never_5xx(client, user, path):
    for method in ("GET", "POST", "PATCH", "DELETE"):
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: t\r\nx-admin-token: test-admin-token\r\n"
            f"x-api-key: {user[1]}\r\nContent-Length: 2\r\nConnection: close"
        ).encode()
        status, payload = await _raw(client.port, head, b"{}")
        assert status < 500 and json.loads(payload)["code"] == status
