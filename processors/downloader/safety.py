"""The SSRF guard: where the downloader may send a request.

Three checks, each raising :class:`~mediaflow.errors.BlockedUrl`:

1. :meth:`UrlPolicy.check_url` (pure): ``http``/``https`` only, and the host is
   on the allowlist (exact names or ``*.`` wildcards: the configured extras plus
   the W-API and CDN hosts of the settings);
2. :meth:`UrlPolicy.check_addresses` (pure): none of the addresses a name
   resolves to is loopback, private, link-local (cloud metadata lives there),
   multicast, reserved or unspecified, unless the settings allow private
   addresses (the local stack's do);
3. :class:`GuardedResolver` runs check 2 inside aiohttp's own name
   resolution, for every connection, so a name cannot resolve to a public
   address when checked and a private one when connected.

Redirects are never followed by aiohttp (``allow_redirects=False``): the
fetchers follow at most :data:`MAX_REDIRECTS` themselves, re-checking each hop.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from mediaflow.config import DownloaderSettings
from mediaflow.errors import BlockedUrl

MAX_REDIRECTS = 5


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
        """Refuse a host if any of its addresses is internal.

        Raises:
            BlockedUrl: no address, or a loopback/private/link-local/metadata/
                multicast/reserved/unspecified one (unless private ones are allowed).
        """
        found = list(addresses)
        if not found:
            raise BlockedUrl(f"host {host!r} resolves to no address")
        if self.allow_private:
            return
        for text in found:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
            if not address.is_global or address.is_multicast or address.is_reserved:
                raise BlockedUrl(
                    f"host {host!r} resolves to the internal address {address}; refused "
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


__all__ = ["MAX_REDIRECTS", "GuardedResolver", "UrlPolicy", "guarded_connector_kwargs"]
