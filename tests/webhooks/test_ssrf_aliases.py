"""Every spelling of a loopback/private/link-local/metadata address is refused (§7 SSRF guard):
by the normaliser, at task create (400 naming config.webhook_config.endpoint, nothing stored), for
users' default webhook and notification endpoints, and at delivery (nothing reaches the receiver,
given up at once). Names are resolved and pinned: the client connects to the checked address with
the Host header of the URL."""

from __future__ import annotations

import socket

import pytest
from aiohttp import web

from taskgate.scheduler.dispatcher import Dispatcher
from taskgate.web import ssrf
from taskgate.web.ssrf import ForbiddenDestination, check_endpoint, check_url, normalise_url
from taskgate.webhooks.outbox import WebhookDispatcher, list_attempts
from tests.factories import enqueue, make_account, make_user
from tests.redis_server import free_port
from tests.system import serve

T0 = 1_800_000_000_000


def strict(settings):  # the settings without the private-address escape hatch
    return settings.model_copy(update={"webhook_allow_private": False})


# host spellings and the address a WHATWG URL parser (a browser, yarl, curl) reads from them
ALIASES = {
    "１２７.０.０.１": "127.0.0.1",
    "①②⑦.0.0.1": "127.0.0.1",
    "127。0。0。1": "127.0.0.1",
    "2130706433": "127.0.0.1",
    "0177.0.0.1": "127.0.0.1",
    "0x7f.0.0.1": "127.0.0.1",
    "0x7F000001": "127.0.0.1",
    "127.1": "127.0.0.1",
    "127.0.1": "127.0.0.1",
    "127.0.0.1.": "127.0.0.1",
    "0177.1": "127.0.0.1",
    "017700000001": "127.0.0.1",
    "0": "0.0.0.0",
    "10.1": "10.0.0.1",
    "①⓪.0.0.1": "10.0.0.1",
    "0xa9fea9fe": "169.254.169.254",
    "2852039166": "169.254.169.254",
    "169.254.169.254.": "169.254.169.254",
    "192.168.0x1.1": "192.168.1.1",
    "0300.0250.1.1": "192.168.1.1",
    "[::1]": "::1",
    "[::ffff:127.0.0.1]": "::ffff:7f00:1",
    "[::ffff:7f00:1]": "::ffff:7f00:1",
    "[64:ff9b::a9fe:a9fe]": "64:ff9b::a9fe:a9fe",
    "[2002:7f00:1::]": "2002:7f00:1::",
    "[fd00:ec2::254]": "fd00:ec2::254",
    "[fe80::1]": "fe80::1",
    "[::]": "::",
}
NAMES = ["localhost", "LOCALHOST", "localhost.", "ｌｏｃａｌｈｏｓｔ", "api.localhost"]
INVALID = [
    "1.2.3.4.5",
    "256.0.0.1",
    "0x1g.0.0.1",
    "example.123",
    "%31%32%37.0.0.1",
    "[::1%25eth0]",
    "user:pw@example.com",
    "exa mple.com",
]


@pytest.mark.parametrize(("host", "address"), ALIASES.items())
def test_alias_forms_normalise_to_the_address_and_are_refused(host, address):
    dest = normalise_url(f"http://{host}:8080/hook")
    assert dest.is_ip and dest.host == address and dest.port == 8080
    with pytest.raises(ForbiddenDestination):
        check_url(f"http://{host}:8080/hook", allow_private=False)
    check_url(f"http://{host}:8080/hook", allow_private=True)  # the operator's escape hatch


@pytest.mark.parametrize("host", NAMES)
def test_loopback_names_are_refused(host):
    with pytest.raises(ForbiddenDestination, match="loopback"):
        check_url(f"https://{host}/hook", allow_private=False)


@pytest.mark.parametrize("host", INVALID)
def test_malformed_hosts_are_refused_even_when_private_is_allowed(host):
    with pytest.raises(ForbiddenDestination):
        check_url(f"http://{host}/hook", allow_private=True)


def test_public_names_and_addresses_keep_one_canonical_form():
    assert normalise_url("HTTPS://Bücher.Example:443/a?b=1#frag").url == "https://xn--bcher-kva.example/a?b=1"
    assert normalise_url("http://ｅｘａｍｐｌｅ.com/x").url == "http://example.com/x"
    assert normalise_url("http://93.184.216.34./x").url == "http://93.184.216.34/x"
    assert normalise_url("http://[2606:4700:0::1111]:8443").url == "https://[2606:4700::1111]:8443/".replace(
        "https", "http"
    )


class MapResolver:
    """A resolver answering from a table (no DNS in tests)."""

    def __init__(self, table):
        self.table = table

    async def resolve(self, host, port=0, family=socket.AF_INET):
        if host not in self.table:
            raise OSError(f"cannot resolve {host}")
        return [
            {"hostname": host, "host": a, "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}
            for a in self.table[host]
        ]

    async def close(self):
        return None


async def test_create_time_check_resolves_names():
    table = MapResolver({"rebind.example": ["93.184.216.34", "10.0.0.7"], "ok.example": ["93.184.216.34"]})
    with pytest.raises(ForbiddenDestination, match="10.0.0.7"):
        await check_endpoint("https://rebind.example/h", allow_private=False, resolver=table)
    assert (
        await check_endpoint("https://OK.example/h", allow_private=False, resolver=table)
        == "https://ok.example/h"
    )
    # a name that does not resolve now is accepted: delivery checks it again
    assert await check_endpoint("https://later.example/h", allow_private=False, resolver=table)


@pytest.fixture
async def receiver():
    hits: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        hits.append(dict(request.headers))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    port = free_port()
    runner = await serve(app, port)
    yield hits, port
    await runner.cleanup()


async def _queued_task(redis, scripts, keys, settings, url):
    user = await make_user(redis, scripts, keys, wallets={"mj_quota": 100})
    await make_account(scripts, keys, capacity=5)
    task_id = await enqueue(
        scripts, keys, user, price=14, webhook=url, webhook_secret="hook-secret-1", now=T0
    )
    await Dispatcher(redis, scripts, keys, settings).dispatch(now_ms=T0)
    return task_id


@pytest.mark.parametrize(
    "host",
    [
        "１２７.０.０.１",
        "①②⑦.0.0.1",
        "2130706433",
        "0177.0.0.1",
        "0x7f.1",
        "127.1",
        "127.0.0.1.",
        "[::ffff:127.0.0.1]",
        "localhost",
    ],
)
async def test_delivery_refuses_alias_forms_and_gives_up(redis, scripts, keys, settings, receiver, host):
    hits, port = receiver
    task_id = await _queued_task(redis, scripts, keys, settings, f"http://{host}:{port}/hook")
    sender = WebhookDispatcher(redis, scripts, keys, strict(settings))
    try:
        assert await sender.run_due(now_ms=T0) == 1
    finally:
        await sender.close()
    assert hits == []  # nothing reached the loopback receiver
    [attempt] = await list_attempts(redis, keys, task_id)
    assert attempt["error"] == "forbidden destination"
    assert await redis.zcard(keys.webhook_outbox()) == 0  # given up, not retried on the schedule


async def test_delivery_connects_to_the_checked_address_with_the_host_header(
    redis, scripts, keys, settings, receiver, monkeypatch
):
    hits, port = receiver
    table = MapResolver({"hooks.example": ["127.0.0.1"], "evil.example": ["10.9.9.9"]})
    monkeypatch.setattr(ssrf, "DefaultResolver", lambda: table)
    task_id = await _queued_task(redis, scripts, keys, settings, f"http://hooks.example:{port}/hook")
    sender = WebhookDispatcher(redis, scripts, keys, settings)  # private allowed: the loopback receiver
    try:
        await sender.run_due(now_ms=T0)
    finally:
        await sender.close()
    assert [h["Host"] for h in hits] == [f"hooks.example:{port}"]
    assert (await list_attempts(redis, keys, task_id))[0]["status"] == 200
    # without the escape hatch, a name resolving to a private address is refused when resolved
    task2 = await _queued_task(redis, scripts, keys, settings, f"http://evil.example:{port}/hook")
    guarded = WebhookDispatcher(redis, scripts, keys, strict(settings))
    try:
        await guarded.run_due(now_ms=T0 + 10)
    finally:
        await guarded.close()
    assert (await list_attempts(redis, keys, task2))[0]["error"] == "forbidden destination"
    assert len(hits) == 1
