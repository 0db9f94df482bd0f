"""What both HTTP roles share: listening within the process's open-files limit.

Every connection costs a file descriptor. When a process runs out of them,
``accept()`` fails with EMFILE, and asyncio then logs an error with its
traceback for every pending connection, over a thousand a second, while the
clients past the limit wait in the kernel's backlog for an answer that never
comes. So:

* :func:`raise_open_files_limit` lifts the soft limit to the hard one at start,
  as the Go runtime does for every program: 1024, a common soft default, is
  too few for a receiver behind a busy load balancer.
* :func:`listen` admits a connection only while the descriptors below
  ``limit - RESERVED_DESCRIPTORS`` leave room for it; past that it answers
  ``503 too_many_connections`` with ``Retry-After`` and closes it, so the
  client retries, and Kafka's sockets and the files the server opens still
  find a descriptor.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections.abc import Callable

from aiohttp import web

from mediaflow.logging import get_logger
from mediaflow.metrics import CONNECTIONS_REFUSED

log = get_logger("mediaflow.serving")

ACCEPT_BACKLOG = 128
"""Connections the kernel queues until they are accepted (aiohttp's default).

asyncio accepts up to this many at a time before any of them is answered, so
the reserve below must hold a whole batch.
"""

RESERVED_DESCRIPTORS = 2 * ACCEPT_BACKLOG
"""Descriptors admitted connections never get: a batch of accepts, refusals, Kafka, files."""

LINGERING_REFUSALS = RESERVED_DESCRIPTORS // 4
"""Refusals that may wait for their client to hang up; past them, a refusal closes at once."""

RETRY_AFTER_S = 5
"""Seconds a refused client is asked to wait."""

REFUSAL_LINGER_S = 2.0
"""How long a refused connection is kept for its client to read the 503 and hang up."""

REFUSAL_LOG_INTERVAL_S = 10.0
"""At most one log line per this many seconds while connections are refused."""


def raise_open_files_limit() -> int:
    """Lift the soft open-files limit to the hard limit; return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:  # a sandbox may refuse it; the old limit still works
        log.warning("open_files_limit_kept", limit=soft, reason=str(exc))
        return soft
    log.info("open_files_limit_raised", before=soft, after=hard)
    return hard


class _Admission(asyncio.Protocol):
    """Decides, once a connection is accepted, whether aiohttp gets it.

    Linux hands out the lowest free descriptor, so a connection whose descriptor
    is at or above ``threshold`` means every descriptor below it is in use.
    The connection is then handed to aiohttp's protocol, or to a refusal, with
    ``transport.set_protocol``: after that, this object is out of the way.
    """

    def __init__(self, gate: _Gate) -> None:
        self._gate = gate

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        descriptor = -1 if sock is None else sock.fileno()
        if descriptor < self._gate.threshold:
            protocol: asyncio.Protocol = self._gate.factory()
        else:
            protocol = _Refusal(self._gate, linger=descriptor < self._gate.linger_threshold)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)


class _Refusal(asyncio.Protocol):
    """Answers 503 at once, then (with ``linger``) waits briefly for the client to hang up.

    Closing at once would reset a connection whose request already arrived
    unread, and a reset can destroy the answer before the client reads it; so a
    lingering refusal half-closes, discards what comes, and closes on the
    client's end of stream or after :data:`REFUSAL_LINGER_S`. Only the first
    :data:`LINGERING_REFUSALS` do, though: a flood of refusals must not use up
    the descriptors kept for Kafka and files, so past them one closes at once.
    """

    def __init__(self, gate: _Gate, *, linger: bool) -> None:
        self._gate = gate
        self._linger = linger
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._gate.count_refusal()
        transport.write(self._gate.refusal)
        if not self._linger:
            transport.close()
            return
        transport.write_eof()
        self._deadline = asyncio.get_running_loop().call_later(REFUSAL_LINGER_S, transport.abort)

    def data_received(self, data: bytes) -> None:
        """Discard the request: it is not served."""

    def eof_received(self) -> bool:
        return False  # the client is done: close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()


class _Gate:
    """The protocol factory handed to asyncio: admission settings and the refusal's bytes."""

    def __init__(self, factory: Callable[[], asyncio.Protocol], role: str, limit: int) -> None:
        self.factory = factory
        self.role = role
        self.limit = limit
        unlimited = limit == resource.RLIM_INFINITY
        self.threshold = sys.maxsize if unlimited else max(1, limit - RESERVED_DESCRIPTORS)
        self.linger_threshold = self.threshold + LINGERING_REFUSALS
        body = json.dumps(
            {
                "error": "too_many_connections",
                "detail": f"the server holds as many connections as its open-files limit "
                f"({limit}) allows; retry in {RETRY_AFTER_S} s",
            }
        ).encode()
        self.refusal = (
            b"HTTP/1.1 503 Service Unavailable\r\n"
            b"Content-Type: application/json; charset=utf-8\r\n"
            b"Retry-After: %d\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
            % (RETRY_AFTER_S, len(body), body)
        )
        self._refused = 0
        self._logged_at = float("-inf")

    def count_refusal(self) -> None:
        CONNECTIONS_REFUSED.labels(self.role).inc()
        self._refused += 1
        now = time.monotonic()
        if now - self._logged_at >= REFUSAL_LOG_INTERVAL_S:
            log.warning(
                "connections_refused",
                role=self.role,
                refused=self._refused,
                open_files_limit=self.limit,
                hint="raise the hard open-files limit (ulimit -Hn, LimitNOFILE=, "
                "docker --ulimit nofile=) or run more workers or hosts",
            )
            self._refused = 0
            self._logged_at = now

    def __call__(self) -> asyncio.Protocol:
        return _Admission(self)


async def listen(
    runner: web.BaseRunner, host: str, port: int, *, role: str, reuse_port: bool = False
) -> asyncio.Server:
    """Serve ``runner``'s application on ``host:port``, admitting what the limit allows.

    Args:
        runner: a set-up aiohttp runner.
        host: the address to bind.
        port: the port to bind (0: any free one).
        role: the role's name, for the refusal metric and log line.
        reuse_port: share the port with other processes (``SO_REUSEPORT``).

    Returns:
        The listening server; ``close()`` it to stop accepting.

    """
    server = runner.server
    if server is None:
        raise RuntimeError("call runner.setup() before listen()")
    limit, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    gate = _Gate(server, role, limit)
    return await asyncio.get_running_loop().create_server(
        gate, host, port, reuse_port=reuse_port, backlog=ACCEPT_BACKLOG
    )


__all__ = ["RESERVED_DESCRIPTORS", "RETRY_AFTER_S", "listen", "raise_open_files_limit"]
