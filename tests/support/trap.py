"""A loopback server on an origin of its own that records every request it receives.

Point a redirect at it to see what would leave for another host: the method,
path, headers and body of each request are kept, and it answers 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from aiohttp import web


@dataclasses.dataclass(frozen=True, slots=True)
class Received:
    """One request the trap received."""

    method: str
    path_qs: str
    headers: dict[str, str]
    body: bytes


class Trap:
    """Records requests in :attr:`received`; see :func:`serving_trap`."""

    def __init__(self) -> None:
        """Prepare the catch-all route."""
        self.received: list[Received] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._record)

    async def _record(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received(request.method, request.path_qs, dict(request.headers), body))
        return web.Response(status=404, text="trap")

    def leaked(self, secrets: Iterable[str]) -> list[Received]:
        """The requests whose headers, path or body carry any of ``secrets``."""
        wanted = [s for s in secrets if s]

        def carries(r: Received) -> bool:
            seen = f"{r.path_qs} {r.headers} {r.body.decode(errors='replace')}"
            return any(s in seen for s in wanted)

        return [r for r in self.received if carries(r)]


@contextlib.asynccontextmanager
async def serving_trap(host: str = "127.0.0.1") -> AsyncIterator[tuple[Trap, str]]:
    """Serve a new :class:`Trap` on ``host`` (any free port); yield it and its base URL."""
    trap = Trap()
    runner = web.AppRunner(trap.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port: Any = runner.addresses[0][1]
    try:
        yield trap, f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def trap_in_thread(host: str = "127.0.0.1") -> Iterator[tuple[Trap, str]]:
    """Serve a new :class:`Trap` from a thread of its own, for callers without an event loop.

    Yields the trap and its base URL; :attr:`Trap.received` can be read at any time.
    """
    trap = Trap()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(trap.app, access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, host, 0).start())
    port: Any = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, name="trap", daemon=True)
    thread.start()
    try:
        yield trap, f"http://{host}:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.run_until_complete(runner.cleanup())
        loop.close()


__all__ = ["Received", "Trap", "serving_trap", "trap_in_thread"]
