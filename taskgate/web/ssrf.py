"""SSRF guard (DESIGN.md §7): webhooks never go to private, loopback, link-local, metadata or other
special addresses unless an operator allows it (``TASKGATE_WEBHOOK_ALLOW_PRIVATE``).

1. ``normalise_url`` turns an endpoint into one canonical spelling, once: the host is mapped with
   IDNA/UTS-46 (full-width and enclosed digits, ideographic dots and case folded to ASCII), then
   parsed as the WHATWG URL standard parses IPv4 (decimal ``2130706433``, octal ``0177.0.0.1``,
   hex ``0x7f.1``, short ``127.1``, a trailing dot), so the address checked is the address any
   HTTP client would connect to. Everything that is not a valid http(s) URL is refused.
2. ``check_endpoint`` refuses an IP literal or a loopback name in a special range at once, and
   resolves other names and checks every address (create time; API and admin).
3. At delivery the request goes to the canonical URL through a connector whose resolver checks
   every address it returns; aiohttp connects to exactly those addresses (no DNS cache, no second
   lookup), keeping the Host header and the TLS server name of the URL."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import idna
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

URL_MAX_CHARS = 2048
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
RESOLVE_TIMEOUT_S = 2.0
NAT64 = ipaddress.ip_network("64:ff9b::/96")
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


class ForbiddenDestination(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Destination:
    url: str  # the canonical URL, the one to post to
    host: str  # canonical host: an ASCII name, a dotted IPv4 or an IPv6 address (no brackets)
    port: int
    is_ip: bool


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in SIX_TO_FOUR:
        return ip.sixtofour
    return None


def address_is_special(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_v4(ip)
        if embedded is not None and address_is_special(str(embedded)):
            return True
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def _whatwg_number(part: str) -> int | None:
    """One IPv4 part as the WHATWG URL standard reads it (0x hex, leading-0 octal, decimal)."""
    base = 10
    if part[:2] in ("0x", "0X"):
        part, base = part[2:], 16
    elif len(part) > 1 and part[0] == "0":
        part, base = part[1:], 8
    if part == "":
        return 0
    try:
        return int(part, base) if part.isascii() and part.isalnum() else None
    except ValueError:
        return None


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a WHATWG URL parser reads from ``host``, or None when ``host`` is a domain.
    Raises ForbiddenDestination for hosts that end in a number but are no valid IPv4 address."""
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    last = parts[-1]
    is_hex = last[:2] in ("0x", "0X") and all(c in HEX_DIGITS for c in last[2:])
    ends_in_number = last.isascii() and (last.isdigit() or is_hex)
    if not ends_in_number:
        return None
    numbers = [_whatwg_number(p) for p in parts]
    if len(parts) > 4 or any(n is None for n in numbers):
        raise ForbiddenDestination(f"{host!r} is not a valid IPv4 address")
    values = [n for n in numbers if n is not None]
    if any(n > 255 for n in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        raise ForbiddenDestination(f"{host!r} is not a valid IPv4 address")
    address = values[-1]
    for i, n in enumerate(values[:-1]):
        address += n * 256 ** (3 - i)
    return ipaddress.IPv4Address(address)


def _canonical_host(netloc_host: str) -> tuple[str, bool]:
    """(canonical host, is an IP address) for the host part of a URL."""
    if ":" in netloc_host:  # an IPv6 literal (urlsplit removed the brackets)
        if "%" in netloc_host:
            raise ForbiddenDestination("IPv6 zone identifiers are not allowed")
        try:
            return str(ipaddress.IPv6Address(netloc_host)), True
        except ValueError:
            raise ForbiddenDestination("not a valid IPv6 address") from None
    try:
        mapped = idna.uts46_remap(netloc_host, std3_rules=False, transitional=False)
    except idna.IDNAError:
        raise ForbiddenDestination("not a valid host name") from None
    ipv4 = parse_ipv4(mapped)
    if ipv4 is not None:
        return str(ipv4), True
    name = mapped.rstrip(".")
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii") if not name.isascii() else name
    except (idna.IDNAError, UnicodeError):
        raise ForbiddenDestination("not a valid host name") from None
    if not ascii_name or any(not (c.isalnum() or c in "-._") for c in ascii_name):
        raise ForbiddenDestination("not a valid host name")
    return ascii_name.lower(), False


def normalise_url(url: str) -> Destination:
    """The one canonical form of a webhook endpoint (see the module docstring), or ForbiddenDestination."""
    if not isinstance(url, str) or len(url) > URL_MAX_CHARS:
        raise ForbiddenDestination(f"not an http(s) URL of at most {URL_MAX_CHARS} characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ForbiddenDestination("not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ForbiddenDestination("not an http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise ForbiddenDestination("credentials in the URL are not allowed")
    host, is_ip = _canonical_host(parts.hostname)
    port = port or (443 if scheme == "https" else 80)
    shown = f"[{host}]" if ":" in host else host
    netloc = shown if port == (443 if scheme == "https" else 80) else f"{shown}:{port}"
    return Destination(urlunsplit((scheme, netloc, parts.path or "/", parts.query, "")), host, port, is_ip)


def check_destination(dest: Destination, *, allow_private: bool) -> None:
    """Refuse a special IP literal or a loopback name (names are also checked when resolved)."""
    if allow_private:
        return
    if dest.is_ip:
        if address_is_special(dest.host):
            raise ForbiddenDestination(f"{dest.host} is a private or special address")
    elif dest.host == "localhost" or dest.host.endswith(".localhost"):
        raise ForbiddenDestination(f"{dest.host} is a loopback name")


def check_url(url: str, *, allow_private: bool) -> Destination:
    """Normalise and check without resolving; returns the destination to post to."""
    dest = normalise_url(url)
    check_destination(dest, allow_private=allow_private)
    return dest


async def check_endpoint(
    url: str,
    *,
    allow_private: bool,
    resolver: AbstractResolver | None = None,
    timeout_s: float = RESOLVE_TIMEOUT_S,
) -> str:
    """Create-time check: normalise, check, resolve a name and check every address. A name that
    does not resolve now is accepted (delivery checks it again when it does). Returns the
    canonical URL."""
    dest = check_url(url, allow_private=allow_private)
    if allow_private or dest.is_ip:
        return dest.url
    guarded = GuardedResolver(False, resolver)
    try:
        await asyncio.wait_for(guarded.resolve(dest.host, dest.port, socket.AF_UNSPEC), timeout_s)
    except (OSError, TimeoutError):
        pass
    finally:
        if resolver is None:
            await guarded.close()
    return dest.url


class GuardedResolver(AbstractResolver):
    """Resolves with aiohttp's default resolver, then refuses any special address, so the
    connector only ever connects to addresses that passed the check."""

    def __init__(self, allow_private: bool, inner: AbstractResolver | None = None) -> None:
        self.allow_private = allow_private
        self.inner = inner or DefaultResolver()

    async def resolve(
        self,
        host: str,
        port: int = 0,
        family: socket.AddressFamily = socket.AF_INET,
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
