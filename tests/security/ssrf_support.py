"""Loopback servers and a policy for SSRF tests: no packet ever leaves 127.0.0.0/8.

The production policy refuses loopback too, so a fake media host on loopback
would be refused before any redirect could be tested. :class:`TrustOnePolicy`
is the production policy (``allow_private=False``) with one exception: the
address the fake origin listens on. Everything else private, including other
loopback addresses, stays refused.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Iterable
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from mediaflow.url_guard import UrlPolicy

ORIGIN_ADDRESS = "127.0.0.1"
"""The one address the tests trust: the fake origin's."""

TRAP_ADDRESS = "127.0.0.2"
"""Another loopback address: a server there counts requests that must never come."""

INTERNAL_NAMES = {
    "metadata.internal": "169.254.169.254",
    "intranet.example": "10.1.2.3",
    "db.example": "172.16.5.4",
    "router.example": "192.168.1.1",
    "v6-loopback.example": "::1",
    "trap.example": TRAP_ADDRESS,
}
"""Host names a hostile DNS answer maps to internal addresses (served by :class:`StubResolver`)."""


class TrustOnePolicy(UrlPolicy):
    """The production policy, except that :data:`ORIGIN_ADDRESS` is reachable."""

    def check_addresses(self, host: str, addresses: Iterable[str]) -> None:
        """Pass the fake origin's address; judge every other answer as production does."""
        found = list(addresses)
        if found and all(a == ORIGIN_ADDRESS for a in found):
            return
        super().check_addresses(host, found)


def production_policy(*extra_hosts: str) -> TrustOnePolicy:
    """Allowlist with the origin, the trap and every internal name: only the address guard."""
    hosts = (ORIGIN_ADDRESS, TRAP_ADDRESS, "localhost", *INTERNAL_NAMES, *extra_hosts)
    return TrustOnePolicy(tuple(hosts), allow_private=False)


class StubResolver(AbstractResolver):
    """Answers from :data:`INTERNAL_NAMES` (and ``localhost``) without asking any DNS server."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The stub answer for ``host``."""
        address = {"localhost": ORIGIN_ADDRESS, **INTERNAL_NAMES}.get(host)
        if address is None:
            raise OSError(f"stub resolver knows no {host}")
        v6 = ":" in address
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if v6 else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        """Nothing to close."""


class Origin:
    """A loopback media host: ``/redirect?to=URL`` answers 302, ``/file`` answers bytes.

    ``hits`` lists every path requested, in order.
    """

    def __init__(self) -> None:
        """Prepare the routes."""
        self.hits: list[str] = []
        self.app = web.Application()
        self.app.router.add_get("/redirect", self._redirect)
        self.app.router.add_route("*", "/{tail:.*}", self._file)

    async def _redirect(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path_qs)
        return web.Response(status=302, headers={"Location": request.query["to"]})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path_qs)
        return web.Response(body=b"secret internal data")


@contextlib.asynccontextmanager
async def serving(origin: Origin, host: str) -> AsyncIterator[str]:
    """Serve ``origin`` on ``host`` (a loopback address); yield its base URL."""
    runner = web.AppRunner(origin.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port: Any = runner.addresses[0][1]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
