"""Server limits (hardening: server limits): a request whose headers do not arrive in time is dropped, a
body that does not arrive in time is a 408, connections over the cap get a 503, aiohttp's parser
errors are answered in the envelope without quoting the offending bytes, and a client that
disconnects mid-body is one info line (no traceback)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys

import pytest
import structlog

from taskgate.api.app import create_app
from taskgate.api.server import start_api
from taskgate.logging import configure_logging
from tests.redis_server import free_port

KEY = "tg_" + "S3cr3tKeyValue" * 3


@pytest.fixture
def log_sink(monkeypatch):
    sink = io.StringIO()
    monkeypatch.setattr(sys, "stderr", sink)
    configure_logging("json", "DEBUG")
    monkeypatch.undo()
    yield sink
    logging.getLogger().handlers = []
    structlog.reset_defaults()


@pytest.fixture
async def serve(settings, services):
    runners = []

    async def start(**changes):
        s = settings.model_copy(update=changes)
        port = free_port()
        runners.append(await start_api(create_app(s, services), s, "127.0.0.1", port))
        return port

    yield start
    for runner in runners:
        await runner.cleanup()


async def _exchange(port: int, data: bytes, *, close: bool = False) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    if close:
        writer.close()
        return b""
    answer = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    return answer


def _envelope(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nx-api-key: " + KEY.encode() + b"\x01\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nIdempotency-Key: key\x7f" + KEY.encode() + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nx-api-key: " + KEY.encode() * 300 + b"\r\n\r\n",
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /api/v1/task HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    ],
)
async def test_parser_errors_are_enveloped_without_echo(serve, log_sink, raw):
    port = await serve()
    answer = await _exchange(port, raw)
    status, body = _envelope(answer)
    assert 400 <= status < 500 and body["code"] == status and body["data"] is None
    assert KEY.encode() not in answer and b"S3cr3t" not in answer
    assert "S3cr3t" not in log_sink.getvalue()


async def test_slow_headers_are_dropped(serve):
    port = await serve(header_read_timeout_s=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes the headers
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 10) == b""  # the server closed the connection
    writer.close()


async def test_slow_body_is_408(serve, services, redis, keys):
    port = await serve(body_read_timeout_s=0.3)
    _, key = await services.users.create("developer", wallets={"mj_quota": 100})
    head = (
        f"POST /api/v1/task HTTP/1.1\r\nHost: x\r\nx-api-key: {key}\r\nContent-Type: application/json"
        "\r\nContent-Length: 500\r\n\r\n"
    ).encode()
    status, body = _envelope(await _exchange(port, head + b'{"model": '))
    assert status == 408 and body["code"] == 408 and body["detail"] == {"timeout_s": 0.3}


async def test_connections_over_the_cap_get_503(serve):
    port = await serve(max_connections=2)
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
    await asyncio.sleep(0.1)  # let the server register them
    status, body = _envelope(await _exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert status == 503 and body["detail"] == {"max_connections": 2}
    for _, writer in held:
        writer.close()
    for _ in range(100):  # once they are gone, connections are served again
        await asyncio.sleep(0.05)
        answer = await _exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        if _envelope(answer)[0] == 200:
            break
    assert _envelope(answer)[0] == 200


async def test_client_disconnect_mid_body_is_one_info_line(serve, services, log_sink):
    port = await serve()
    _, key = await services.users.create("developer", wallets={"mj_quota": 100})
    head = (
        f"POST /api/v1/task HTTP/1.1\r\nHost: x\r\nx-api-key: {key}\r\nContent-Type: application/json"
        "\r\nContent-Length: 500\r\n\r\n"
    ).encode()
    await _exchange(port, head + b'{"model": ', close=True)
    for _ in range(200):
        if "client_disconnected" in log_sink.getvalue():
            break
        await asyncio.sleep(0.02)
    events = [json.loads(line) for line in log_sink.getvalue().splitlines() if line.startswith("{")]
    gone = [e for e in events if e["event"] == "client_disconnected"]
    assert len(gone) == 1 and gone[0]["level"] == "info"
    assert not [e for e in events if e["level"] in ("error", "critical") or "exception" in e]
