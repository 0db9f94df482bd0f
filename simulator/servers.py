"""Run the fake W-API and CDN on loopback: in the test's event loop, or in a thread.

``running_simulator`` is for async tests::

    async with running_simulator(library, faults, tokens) as sim:
        ... sim.wapi_url, sim.cdn_url, sim.calls ...

``SimulatorThread`` runs the same servers in a background thread with its own
event loop, for plain (sync) tests and for a downloader that runs in a
subprocess and needs fixed URLs::

    with SimulatorThread(library, faults, tokens) as sim:
        ...

Ports default to 0 (the OS picks free ones); the chosen URLs are on the
returned object.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import AsyncIterator, Mapping

from aiohttp import web

from mediaflow.errors import UsageError
from simulator.calls import CallLog
from simulator.cdn import cdn_app
from simulator.faults import Faults
from simulator.media import MediaLibrary
from simulator.wapi import wapi_app

_SHUTDOWN_TIMEOUT_S = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class Simulator:
    """A running simulator: where it listens and what it was asked."""

    wapi_url: str
    cdn_url: str
    calls: CallLog
    library: MediaLibrary
    faults: Faults


async def _start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    # handler_cancellation: a client that gives up cancels its handler, so a
    # "hang" fault ends when the downloader's timeout fires, not after hang_s.
    runner = web.AppRunner(
        app, handler_cancellation=True, shutdown_timeout=_SHUTDOWN_TIMEOUT_S, access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1]
    return runner, f"http://{host}:{bound_port}"


@contextlib.asynccontextmanager
async def running_simulator(
    library: MediaLibrary,
    faults: Faults | None = None,
    tokens: Mapping[str, str] | None = None,
    *,
    host: str = "127.0.0.1",
    wapi_port: int = 0,
    cdn_port: int = 0,
    public_base_url: str | None = None,
) -> AsyncIterator[Simulator]:
    """Serve the fake W-API and CDN until the block exits.

    Args:
        library: the media both servers know.
        faults: fault settings (none when omitted); mutate them mid-run freely.
        tokens: instance id -> W-API bearer token.
        host: the interface to bind (loopback by default).
        wapi_port: W-API port, 0 for any free port.
        cdn_port: CDN port, 0 for any free port.
        public_base_url: the host W-API puts in ``fileLink``; the W-API URL when omitted.

    """
    faults = faults if faults is not None else Faults()
    calls = CallLog()
    runners: list[web.AppRunner] = []
    try:
        wapi_runner, wapi_url = await _start(
            wapi_app(library, dict(tokens or {}), faults, public_base_url, calls), host, wapi_port
        )
        runners.append(wapi_runner)
        cdn_runner, cdn_url = await _start(cdn_app(library, faults, calls), host, cdn_port)
        runners.append(cdn_runner)
        yield Simulator(wapi_url, cdn_url, calls, library, faults)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


class SimulatorThread:
    """The simulator in a background thread with its own event loop.

    Attributes ``wapi_url``, ``cdn_url``, ``calls``, ``library`` and ``faults``
    are available once :meth:`start` returns (or inside the ``with`` block).
    """

    def __init__(
        self,
        library: MediaLibrary,
        faults: Faults | None = None,
        tokens: Mapping[str, str] | None = None,
        *,
        host: str = "127.0.0.1",
        wapi_port: int = 0,
        cdn_port: int = 0,
        public_base_url: str | None = None,
    ) -> None:
        """Prepare (not start) the simulator; arguments as :func:`running_simulator`."""
        self._kwargs = {
            "library": library,
            "faults": faults,
            "tokens": tokens,
            "host": host,
            "wapi_port": wapi_port,
            "cdn_port": cdn_port,
            "public_base_url": public_base_url,
        }
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._sim: Simulator | None = None
        self._thread = threading.Thread(target=self._run, name="mediaflow-simulator", daemon=True)

    @property
    def sim(self) -> Simulator:
        """The running simulator.

        Raises:
            UsageError: not started.

        """
        if self._sim is None:
            raise UsageError("SimulatorThread is not running; call start() first")
        return self._sim

    @property
    def wapi_url(self) -> str:
        """Base URL of the fake W-API."""
        return self.sim.wapi_url

    @property
    def cdn_url(self) -> str:
        """Base URL of the fake CDN."""
        return self.sim.cdn_url

    @property
    def calls(self) -> CallLog:
        """Every request answered so far."""
        return self.sim.calls

    @property
    def library(self) -> MediaLibrary:
        """The media served."""
        return self.sim.library

    @property
    def faults(self) -> Faults:
        """The live fault settings."""
        return self.sim.faults

    def start(self, timeout: float = 10.0) -> SimulatorThread:
        """Start serving; return once both servers listen.

        Raises:
            UsageError: the servers did not come up (e.g. the port is taken).

        """
        self._thread.start()
        if not self._ready.wait(timeout):
            raise UsageError(f"simulator did not start within {timeout} s")
        if self._error is not None:
            raise UsageError(f"simulator failed to start: {self._error}") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and join the thread (idempotent)."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with running_simulator(**self._kwargs) as sim:  # type: ignore[arg-type]
            self._sim = sim
            self._ready.set()
            await self._stop.wait()


__all__ = ["Simulator", "SimulatorThread", "running_simulator"]
