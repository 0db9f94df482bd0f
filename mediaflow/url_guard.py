"""The SSRF guard: where outgoing requests (downloads, callbacks) may go.

Three checks, each raising :class:`~mediaflow.errors.BlockedUrl`:

1. :meth:`UrlPolicy.check_url` (pure): ``http``/``https`` only, and the host is
   on the allowlist (exact names or ``*.`` wildcards: the configured extras plus
   the W-API and CDN hosts of the settings);
2. :meth:`UrlPolicy.check_addresses` (pure): none of the addresses a name
   resolves to is in :data:`REFUSED_NETWORKS` (loopback, private, link-local
   where cloud metadata lives, shared, documentation, multicast, reserved...),
   and none embeds such an IPv4 address (IPv4-mapped, 6to4, NAT64), unless the
   settings allow private addresses (the local stack's do);
3. :class:`GuardedResolver` runs check 2 inside aiohttp's own name
   resolution, for every connection, so a name cannot resolve to a public
   address when checked and a private one when connected.

Redirects are never followed by aiohttp (``allow_redirects=False``): the
fetchers follow at most :data:`MAX_REDIRECTS` themselves, re-checking each hop.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any
from urllib.parse import urljoin, urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from mediaflow.config import DownloaderSettings
from mediaflow.errors import BlockedUrl

MAX_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class Refused:
    """A network the downloader never connects to, and why."""

    network: IPv4Network | IPv6Network
    reason: str


def _refused(*rows: tuple[str, str]) -> tuple[Refused, ...]:
    return tuple(Refused(ipaddress.ip_network(network), reason) for network, reason in rows)


REFUSED_NETWORKS: tuple[Refused, ...] = _refused(
    # IPv4: the IANA special-purpose registry; everything else is public.
    ("0.0.0.0/8", "'this network' (RFC 791)"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "carrier-grade NAT, shared (RFC 6598)"),
    ("127.0.0.0/8", "loopback (RFC 1122)"),
    ("169.254.0.0/16", "link-local, where cloud metadata lives (RFC 3927)"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ("192.0.2.0/24", "documentation, TEST-NET-1 (RFC 5737)"),
    ("192.88.99.0/24", "6to4 relay anycast, deprecated (RFC 7526)"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation, TEST-NET-2 (RFC 5737)"),
    ("203.0.113.0/24", "documentation, TEST-NET-3 (RFC 5737)"),
    ("224.0.0.0/4", "multicast (RFC 5771)"),
    ("240.0.0.0/4", "reserved (RFC 1112)"),
    ("255.255.255.255/32", "limited broadcast (RFC 919)"),
    # IPv6: only global unicast (2000::/3) is public, and not all of it.
    ("::/128", "unspecified (RFC 4291)"),
    ("::1/128", "loopback (RFC 4291)"),
    ("::/96", "IPv4-compatible, deprecated (RFC 4291)"),
    ("::ffff:0:0:0/96", "IPv4-translated (RFC 2765)"),
    ("100::/64", "discard-only (RFC 6666)"),
    ("2001::/23", "IETF protocol assignments (RFC 2928)"),
    ("2001::/32", "Teredo tunnel, relays reach any IPv4 host (RFC 4380)"),
    ("2001:2::/48", "benchmarking (RFC 5180)"),
    ("2001:10::/28", "ORCHID, deprecated (RFC 4843)"),
    ("2001:20::/28", "ORCHIDv2 (RFC 7343)"),
    ("2001:db8::/32", "documentation (RFC 3849)"),
    ("3fff::/20", "documentation (RFC 9637)"),
    ("5f00::/16", "SRv6 segment identifiers (RFC 9602)"),
    ("fc00::/7", "unique local (RFC 4193)"),
    ("fe80::/10", "link-local (RFC 4291)"),
    ("fec0::/10", "site-local, deprecated (RFC 3879)"),
    ("ff00::/8", "multicast (RFC 4291)"),
    ("::/3", "not global unicast (outside 2000::/3)"),
    ("4000::/2", "not global unicast (outside 2000::/3)"),
    ("8000::/1", "not global unicast (outside 2000::/3)"),
)
"""Every network whose addresses are refused; the most specific match names the reason."""


def _last_32_bits(address: IPv6Address) -> list[IPv4Address]:
    return [IPv4Address(address.packed[12:])]


def _sixtofour(address: IPv6Address) -> list[IPv4Address]:
    return [IPv4Address(address.packed[2:6])]


def _rfc6052_readings(address: IPv6Address) -> list[IPv4Address]:
    """The IPv4 addresses a local-use NAT64 address may carry (RFC 6052 section 2.2).

    The operator picks the prefix length (/48, /56, /64 or /96) and the address
    does not say which. The /96 layout is always possible; a shorter one only
    when bits 64-71 and its suffix are zero, as RFC 6052 requires. Every
    possible reading is judged.
    """
    packed = address.packed
    readings = _last_32_bits(address)
    for length in (48, 56, 64):
        head = packed[length // 8 : 8]  # from the end of the prefix to bit 63
        tail_end = 9 + 4 - len(head)  # the rest of the IPv4 address follows bits 64-71
        if packed[8] == 0 and not any(packed[tail_end:]):
            readings.append(IPv4Address(head + packed[9:tail_end]))
    return readings


_EMBEDDING: tuple[tuple[IPv6Network, str, Callable[[IPv6Address], list[IPv4Address]]], ...] = (
    (IPv6Network("::ffff:0:0/96"), "IPv4-mapped", _last_32_bits),
    (IPv6Network("2002::/16"), "6to4 (RFC 3056)", _sixtofour),
    (IPv6Network("64:ff9b::/96"), "NAT64 (RFC 6052)", _last_32_bits),
    (IPv6Network("64:ff9b:1::/48"), "local-use NAT64 (RFC 8215)", _rfc6052_readings),
)
"""IPv6 networks whose addresses carry an IPv4 address and reach it: judged by that address."""


def refusal(address: IPv4Address | IPv6Address) -> str | None:
    """Why the downloader must not connect to ``address``, or ``None`` when it may."""
    if isinstance(address, IPv6Address):
        for network, name, embedded in _EMBEDDING:
            if address in network:
                for inner in embedded(address):
                    reason = refusal(inner)
                    if reason is not None:
                        return f"{name} of {inner}, {reason}"
                return None
    matches = [row for row in REFUSED_NETWORKS if address in row.network]
    if not matches:
        return None
    row = max(matches, key=lambda r: r.network.prefixlen)
    return f"{row.reason}, in {row.network}"


def _host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    """Which URLs and addresses outgoing requests may reach.

    Attributes:
        allowed_hosts: exact host names or ``*.suffix`` wildcards (lower case).
        allow_private: also allow loopback/private/link-local addresses.
    """

    allowed_hosts: tuple[str, ...]
    allow_private: bool = False

    @classmethod
    def from_settings(cls, settings: DownloaderSettings) -> UrlPolicy:
        """The policy of the settings: their allowlist plus the W-API and CDN hosts."""
        hosts = {h.strip().lower() for h in settings.allowed_hosts if h.strip()}
        configured = (_host_of(settings.wapi_base_url), _host_of(settings.cdn_base_url))
        hosts.update(h for h in configured if h)
        return cls(tuple(sorted(hosts)), settings.allow_private_addresses)

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` is allowed (``*.x.y`` matches ``a.x.y``, not ``x.y``)."""
        host = host.lower().rstrip(".")
        for entry in self.allowed_hosts:
            if entry.startswith("*."):
                if host.endswith(entry[1:]) and len(host) > len(entry) - 1:
                    return True
            elif host == entry:
                return True
        return False

    def check_url(self, url: str) -> str:
        """Check scheme and host of ``url``; return the host.

        Raises:
            BlockedUrl: not http(s), no host, credentials in the URL, or a host off the list.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise BlockedUrl("malformed URL") from exc
        if parts.scheme not in ("http", "https"):
            raise BlockedUrl(f"scheme {parts.scheme!r} is not allowed; only http and https")
        host = (parts.hostname or "").lower()
        if not host:
            raise BlockedUrl("URL has no host")
        if parts.username or parts.password:
            raise BlockedUrl(f"URL to {host} carries credentials; refused")
        if not self.host_allowed(host):
            raise BlockedUrl(
                f"host {host!r} is not on the allowlist; add it to MEDIAFLOW_ALLOWED_HOSTS "
                "if it is a legitimate media source"
            )
        del port  # parsed only to reject malformed ports
        if _is_ip_literal(host):
            # aiohttp skips the resolver for literal addresses: check them here.
            self.check_addresses(host, [host.strip("[]")])
        return host

    def check_addresses(self, host: str, addresses: Iterable[str]) -> None:
        """Refuse a host if any of its addresses is internal or special-purpose.

        Raises:
            BlockedUrl: no address, or one :func:`refusal` gives a reason for
                (unless private ones are allowed).
        """
        found = list(addresses)
        if not found:
            raise BlockedUrl(f"host {host!r} resolves to no address")
        if self.allow_private:
            return
        for text in found:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            reason = refusal(address)
            if reason is not None:
                raise BlockedUrl(
                    f"host {host!r} resolves to {address}, {reason}; refused "
                    "(set MEDIAFLOW_ALLOW_PRIVATE_ADDRESSES=true only for a local stack)"
                )

    def redirect_target(self, current: str, location: str | None) -> str:
        """Resolve and check a redirect's ``Location`` against ``current``.

        Raises:
            BlockedUrl: no Location, or the target fails :meth:`check_url`.
        """
        if not location:
            raise BlockedUrl("redirect without a Location header")
        target = urljoin(current, location)
        self.check_url(target)
        return target


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that applies :meth:`UrlPolicy.check_addresses` to every lookup."""

    def __init__(self, policy: UrlPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host`` and refuse it when any address is internal."""
        results = await self._inner.resolve(host, port, family)
        self._policy.check_addresses(host, [r["host"] for r in results])
        return results

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._inner.close()


def guarded_connector_kwargs(policy: UrlPolicy) -> dict[str, Any]:
    """Keyword arguments for :class:`aiohttp.TCPConnector` that enforce ``policy``.

    The DNS cache is off so every connection is checked against a fresh answer.
    """
    return {"resolver": GuardedResolver(policy), "use_dns_cache": False}


__all__ = [
    "MAX_REDIRECTS",
    "REFUSED_NETWORKS",
    "GuardedResolver",
    "Refused",
    "UrlPolicy",
    "guarded_connector_kwargs",
    "refusal",
]
