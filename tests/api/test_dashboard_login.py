"""Bodies the JSON routes never see: the dashboard's login form, and a `Content-Encoding` that lies.
A hostile body is a 4xx (a login page, or the envelope naming `body`), never a 5xx, and no session
is set."""

from __future__ import annotations

import asyncio

import pytest

from taskgate.api.app import create_app
from taskgate.api.server import start_api
from tests.api.test_server_limits import _envelope
from tests.redis_server import free_port

FORM = "application/x-www-form-urlencoded"
ADMIN = {"x-admin-token": "test-admin-token"}


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"token=\xff\xfe", {"content-type": FORM}, 400),  # not UTF-8
        (b"token=%ED%A0%80", {"content-type": FORM}, 401),  # a lone surrogate, percent-encoded
        (b"token=test-admin-token", {"content-type": FORM + "; charset=bogus"}, 303),  # charset ignored
        (b"token=a", {"content-type": FORM + "; charset=bogus"}, 401),
        (b"--zz\r\nbroken\r\n\r\n--", {"content-type": "multipart/form-data; boundary=zz"}, 400),
        (b"token=a", {"content-type": "multipart/form-data"}, 400),  # no boundary
        (b"token=test-admin-token", {"content-type": FORM, "content-encoding": "gzip"}, 400),
        (b'{"token": "test-admin-token"}', {"content-type": "application/json"}, 400),
        (b"", {"content-type": FORM}, 401),
    ],
)
async def test_a_hostile_login_form_is_refused_without_a_session(client, body, headers, status):
    resp = await client.post("/dashboard/login", data=body, headers=headers, allow_redirects=False)
    assert resp.status == status, await resp.text()
    assert ("tg_session" in resp.cookies) == (status == 303)


async def test_the_login_page_form_logs_in(client):
    resp = await client.post("/dashboard/login", data={"token": "test-admin-token"}, allow_redirects=False)
    assert resp.status == 303 and "tg_session" in resp.cookies


@pytest.fixture
async def api_port(settings, services):
    """The API served as in production (``start_api``: aiohttp's own errors in the envelope too)."""
    port = free_port()
    runner = await start_api(create_app(settings, services), settings, "127.0.0.1", port)
    yield port
    await runner.cleanup()


async def _split_exchange(port: int, head: bytes, body: bytes) -> bytes:
    """Headers first, then the body: the handler is already reading when the bad payload comes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.write(body)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    return answer


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
async def test_a_body_that_is_not_in_its_content_encoding_is_a_400(client, api_port, encoding):
    resp = await client.post("/admin/v1/users", json={"plan": "free"}, headers=ADMIN)
    key = (await resp.json())["data"]["api_key"]
    body = b'{"model": "midjourney"}'
    for path, auth in (
        ("/api/v1/task", f"x-api-key: {key}"),
        ("/admin/v1/users", "x-admin-token: test-admin-token"),
    ):
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\nContent-Type: application/json\r\n"
            f"Content-Encoding: {encoding}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        status, answer = _envelope(await _split_exchange(api_port, head.encode(), body))
        assert status == 400 and answer["code"] == 400, (path, answer)
