"""SSRF guard: webhooks never go to private, loopback, link-local or other special addresses
unless an operator allows it (TASKGATE_WEBHOOK_ALLOW_PRIVATE). Names are checked at resolution
time by the connector's resolver, so the address connected to is the address checked (no DNS
rebinding window); IP-literal hosts, which skip the resolver, are checked explicitly."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver


class ForbiddenDestination(Exception):
    pass


def address_is_special(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
                or ip.is_unspecified or not ip.is_global)


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse non-http(s) URLs and IP-literal hosts in special ranges."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ForbiddenDestination(f"not an http(s) URL: {url!r}")
    if allow_private:
        return
    try:
        ipaddress.ip_address(parts.hostname)
    except ValueError:
        if parts.hostname.rstrip(".").lower() == "localhost" or parts.hostname.endswith(".localhost"):
            raise ForbiddenDestination(f"{parts.hostname} is a loopback name") from None
        return  # a name: the resolver checks every address it resolves to
    if address_is_special(parts.hostname):
        raise ForbiddenDestination(f"{parts.hostname} is a private or special address")


class GuardedResolver(AbstractResolver):
    """Resolves with aiohttp's default resolver, then refuses any special address."""

    def __init__(self, allow_private: bool, inner: AbstractResolver | None = None) -> None:
        self.allow_private = allow_private
        self.inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        if not self.allow_private:
            bad = [r["host"] for r in results if address_is_special(r["host"])]
            if bad:
                raise ForbiddenDestination(f"{host} resolves to private or special addresses {bad}")
        return results

    async def close(self) -> None:
        await self.inner.close()


def guarded_connector_kwargs(allow_private: bool) -> dict[str, Any]:
    return {"resolver": GuardedResolver(allow_private), "use_dns_cache": False}
