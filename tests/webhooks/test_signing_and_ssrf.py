"""Standard Webhooks signatures (checked with the reference package) and the SSRF guard."""

from __future__ import annotations

import base64
import socket

import pytest
from standardwebhooks import Webhook

from taskgate.web.ssrf import ForbiddenDestination, GuardedResolver, address_is_special, check_url
from taskgate.webhooks.receiver import verify_request
from taskgate.webhooks.signing import InvalidSignature, sign, verify


@pytest.mark.parametrize("secret", ["plain-goapi-secret", "whsec_" + base64.b64encode(b"k" * 24).decode()])
def test_signature_verifies_with_the_reference_package(secret):
    body, msg_id, ts = b'{"timestamp":1,"data":{"task_id":"t"}}', "t:1", 1_800_000_000
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
    }
    ref_secret = (
        secret if secret.startswith("whsec_") else "whsec_" + base64.b64encode(secret.encode()).decode()
    )
    wh = Webhook(ref_secret)
    assert wh.sign(msg_id, _dt(ts), body.decode()) == headers["webhook-signature"]
    assert verify_request(headers, body, secret, now=ts)["data"]["task_id"] == "t"


def _dt(ts):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC)


def test_forged_or_stale_signatures_are_refused():
    body, ts = b"{}", 1_800_000_000
    good = sign("s", "id", ts, body)
    with pytest.raises(InvalidSignature):
        verify("s", "id", ts, body + b" ", good, now=ts)
    with pytest.raises(InvalidSignature):
        verify("other", "id", ts, body, good, now=ts)
    with pytest.raises(InvalidSignature):
        verify("s", "id", ts, body, good, now=ts + 301)
    verify("s", "id", ts, body, "v1,bogus " + good, now=ts)  # any listed signature may match
    with pytest.raises(InvalidSignature):
        verify_request({"webhook-id": "id"}, body, "s")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
    ],
)
def test_special_addresses(address):
    assert address_is_special(address)
    with pytest.raises(ForbiddenDestination):
        check_url(f"http://{'[' + address + ']' if ':' in address else address}/hook", allow_private=False)
    check_url(f"http://{'[' + address + ']' if ':' in address else address}/hook", allow_private=True)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111", "8.8.8.8"])
def test_public_addresses_pass(address):
    assert not address_is_special(address)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "http:///nohost", "javascript:x"]
)
def test_non_http_urls_are_refused_even_when_private_is_allowed(url):
    with pytest.raises(ForbiddenDestination):
        check_url(url, allow_private=True)


def test_localhost_names_are_refused():
    for url in ("http://localhost/x", "http://api.localhost:8000/x"):
        with pytest.raises(ForbiddenDestination):
            check_url(url, allow_private=False)


class FakeResolver:
    def __init__(self, addresses):
        self.addresses = addresses

    async def resolve(self, host, port=0, family=socket.AF_INET):
        return [
            {"hostname": host, "host": a, "port": port, "family": family, "proto": 0, "flags": 0}
            for a in self.addresses
        ]

    async def close(self):
        return None


async def test_names_resolving_to_private_addresses_are_refused():
    guarded = GuardedResolver(False, FakeResolver(["93.184.216.34", "10.0.0.5"]))
    with pytest.raises(ForbiddenDestination, match="10.0.0.5"):
        await guarded.resolve("rebind.example", 80)
    ok = await GuardedResolver(False, FakeResolver(["93.184.216.34"])).resolve("example.com", 80)
    assert ok[0]["host"] == "93.184.216.34"
    allowed = await GuardedResolver(True, FakeResolver(["10.0.0.5"])).resolve("internal", 80)
    assert allowed[0]["host"] == "10.0.0.5"


def test_reference_package_verifies_a_fresh_delivery():
    import time

    secret, body, ts = "goapi-secret", b'{"data":{}}', int(time.time())
    headers = {
        "webhook-id": "t:2",
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, "t:2", ts, body),
    }
    Webhook("whsec_" + base64.b64encode(secret.encode()).decode()).verify(body, headers)
