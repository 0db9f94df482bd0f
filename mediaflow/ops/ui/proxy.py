"""Requests through a trusted TLS-terminating proxy: their real scheme and client address.

A proxy that ends TLS forwards plain HTTP, so without this the dashboard
would see ``http`` (no Secure cookie, and the browser's ``Origin: https://…``
would fail the same-origin check) and the proxy's address (one login
throttle shared by everybody behind it). When the connection comes from an
address of ``MEDIAFLOW_API_TRUSTED_PROXIES``, the request is read as the
proxy describes it: the scheme from ``X-Forwarded-Proto`` (the value the
nearest proxy added), the client from ``X-Forwarded-For`` (the nearest
address that is not a trusted proxy; what a client wrote further left is
never believed). From any other peer both headers are ignored: anyone can
send them. With no trusted proxy (the default) nothing is installed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

from mediaflow.config import variable_name
from mediaflow.errors import ConfigError
from mediaflow.ops.ui.security import Handler

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """The proxies' addresses or networks (``10.0.0.5``, ``10.0.0.0/8``, ``::1``).

    Raises:
        ConfigError: an entry is neither, naming the variable.
    """
    try:
        return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)
    except ValueError as exc:
        raise ConfigError(
            f"{variable_name('', 'api_trusted_proxies')}: {exc}; give the addresses or "
            "networks of your TLS-terminating proxies, separated by commas"
        ) from exc


def _trusted(address: str | None, trusted: tuple[Network, ...]) -> bool:
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(parsed in network for network in trusted)


def client_address(forwarded_for: Iterable[str], trusted: tuple[Network, ...]) -> str | None:
    """The client in ``X-Forwarded-For`` values: the nearest hop that is no trusted proxy (pure).

    ``None`` when every hop is a trusted proxy or the nearest other one is not an address.
    """
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return None
    return None


def forwarded(trusted: tuple[Network, ...]) -> Middleware:
    """A middleware that reads requests from ``trusted`` proxies as the proxy describes them."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not _trusted(request.remote, trusted):
            return await handler(request)
        changes: dict[str, str] = {}
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
        if proto in ("http", "https"):
            changes["scheme"] = proto
        client = client_address(request.headers.getall("X-Forwarded-For", []), trusted)
        if client is not None:
            changes["remote"] = client
        return await handler(request.clone(**changes) if changes else request)

    return middleware


__all__ = ["client_address", "forwarded", "trusted_networks"]
