"""What both HTTP roles share: listening within the open-files limit and a connection limit.

Every connection costs a file descriptor. When a process runs out of them,
``accept()`` fails with EMFILE; asyncio's own accept loop then logs an error
with its traceback for every pending connection, over a thousand a second,
burns CPU retrying, and leaves the clients past the limit unanswered in the
kernel's backlog. So:

* :func:`raise_open_files_limit` lifts the soft limit to the hard one at start,
  as the Go runtime does for every program: 1024, a common soft default, is
  too few for a receiver behind a busy load balancer.
* :func:`listen` accepts connections itself. Linux hands out the lowest free
  descriptor, so a connection whose descriptor is at or above ``limit -
  RESERVED_DESCRIPTORS`` means every descriptor below it is in use: it gets
  ``503 too_many_connections`` with ``Retry-After`` at once and is closed on
  the spot, so the client retries, and Kafka's sockets and the files the
  server opens still find a descriptor. Every other connection goes to aiohttp
  through ``loop.connect_accepted_socket``.
* Since the soft limit is raised to the hard one, often tens of thousands,
  descriptors alone hardly bound anything: a role can set its own
  :class:`ConnectionLimit` (the webhook receiver's
  ``MEDIAFLOW_WEBHOOK_MAX_CONNECTIONS``). A connection past it gets the same
  503 at once; the listener counts each connection from its accept to its
  close.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import resource
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from mediaflow.config import variable_name
from mediaflow.errors import ConfigError
from mediaflow.logging import get_logger
from mediaflow.metrics import CONNECTIONS_REFUSED

log = get_logger("mediaflow.serving")

RESERVED_DESCRIPTORS = 64
"""Descriptors connections never get: Kafka's sockets, files, the refusal itself."""

ACCEPT_BACKLOG = 128
"""Connections the kernel queues until they are accepted (aiohttp's default)."""

RETRY_AFTER_S = 5
"""Seconds a client is asked to wait after any 503 of ours (``Retry-After``)."""

LOG_INTERVAL_S = 10.0
"""At most one log line per this many seconds about refused or failed accepts."""

ACCEPT_PAUSE_S = 1.0
"""How long accepting pauses when the system itself is out of descriptors or memory."""

_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


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


@dataclass(frozen=True, slots=True)
class ConnectionLimit:
    """The most connections a role holds at once.

    Attributes:
        count: the limit.
        setting: the ``Settings`` field it comes from, named in the log line
            that says connections are being refused.

    """

    count: int
    setting: str


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, handed every event; tells the listener its end."""

    __slots__ = ("_inner", "_on_end")

    def __init__(self, inner: asyncio.Protocol, on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end: Callable[[], None] | None = on_end

    def end(self) -> None:
        """Count the connection as closed, once, however many paths say so."""
        if self._on_end is not None:
            on_end, self._on_end = self._on_end, None
            on_end()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.end()
        self._inner.connection_lost(exc)


class Listener:
    """Listening sockets that admit what the open-files limit allows; see the module doc.

    Use :func:`listen` to make one; :meth:`close` stops accepting (the
    connections already admitted stay with aiohttp).
    """

    def __init__(
        self,
        sockets: list[socket.socket],
        factory: Callable[[], asyncio.Protocol],
        *,
        role: str,
        limit: int,
        max_connections: ConnectionLimit | None = None,
    ) -> None:
        self.sockets = sockets
        self._factory = factory
        self._role = role
        self._loop = asyncio.get_running_loop()
        unlimited = limit == resource.RLIM_INFINITY
        self._threshold = sys.maxsize if unlimited else max(1, limit - RESERVED_DESCRIPTORS)
        self._refusal = _refusal(
            f"the server holds as many connections as its open-files limit ({limit}) allows"
        )
        self._max_connections = max_connections
        self._open = 0  # admitted and not closed yet; counted under a limit only
        if max_connections is not None:
            self._full = _refusal(
                f"the server holds as many connections as it may ({max_connections.count})"
            )
        self._starting: set[asyncio.Task[object]] = set()
        self._refused = 0
        self._logged_at: dict[str, float] = {}
        for sock in sockets:
            self._loop.add_reader(sock, self._accept, sock)

    def close(self) -> None:
        """Stop accepting and close the listening sockets."""
        for sock in self.sockets:
            self._loop.remove_reader(sock)
            sock.close()

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BACKLOG):
            try:
                connection, _address = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise
                self._pause(sock, exc)
                return
            if connection.fileno() >= self._threshold:
                self._refuse(connection, self._refusal, _OUT_OF_DESCRIPTORS_HINT)
                continue
            limit = self._max_connections
            if limit is not None:
                if self._open >= limit.count:
                    hint = f"raise {variable_name('', limit.setting)} or run more workers or hosts"
                    self._refuse(connection, self._full, hint)
                    continue
                self._open += 1  # here, not in _start: a burst is accepted before any starts
            connection.setblocking(False)
            task = self._loop.create_task(self._start(connection))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)

    async def _start(self, connection: socket.socket) -> None:
        protocol = self._factory()
        if self._max_connections is not None:
            protocol = _Counted(protocol, self._closed)
        try:
            await self._loop.connect_accepted_socket(lambda: protocol, connection)
        except OSError as exc:  # the client left before its transport was made
            log.info("http_client_gone", role=self._role, reason=str(exc))
            connection.close()
            if isinstance(protocol, _Counted):
                protocol.end()

    def _closed(self) -> None:
        self._open -= 1

    def _refuse(self, connection: socket.socket, refusal: bytes, hint: str) -> None:
        # Sent at once on the fresh socket (its buffer is empty, the answer small),
        # then closed: a refusal must not hold its descriptor.
        with contextlib.suppress(OSError):
            connection.setblocking(False)
            connection.send(refusal)
            # Read what already came, so the close is a plain end of stream:
            # closing on unread bytes resets, and a reset can wipe out the answer.
            for _ in range(4):  # bounded: a sender must not keep us here
                if not connection.recv(65536):
                    break
        connection.close()
        CONNECTIONS_REFUSED.labels(self._role).inc()
        self._refused += 1
        if self._due_to_log("connections_refused"):
            log.warning("connections_refused", role=self._role, refused=self._refused, hint=hint)
            self._refused = 0

    def _pause(self, sock: socket.socket, exc: OSError) -> None:
        # Out of descriptors beyond the reserve, or out of memory: try again in a moment.
        self._loop.remove_reader(sock)
        self._loop.call_later(ACCEPT_PAUSE_S, self._resume, sock)
        if self._due_to_log("accept_failed"):
            log.error(
                "accept_failed", role=self._role, reason=exc.strerror, retry_in_s=ACCEPT_PAUSE_S
            )

    def _resume(self, sock: socket.socket) -> None:
        if sock.fileno() != -1:  # not closed meanwhile
            self._loop.add_reader(sock, self._accept, sock)

    def _due_to_log(self, event: str) -> bool:
        now = time.monotonic()
        if now - self._logged_at.get(event, float("-inf")) < LOG_INTERVAL_S:
            return False
        self._logged_at[event] = now
        return True


_OUT_OF_DESCRIPTORS_HINT = (
    "raise the hard open-files limit (ulimit -Hn, LimitNOFILE=, docker --ulimit nofile=) "
    "or run more workers or hosts"
)


def _refusal(reason: str) -> bytes:
    body = json.dumps(
        {"error": "too_many_connections", "detail": f"{reason}; retry in {RETRY_AFTER_S} s"}
    ).encode()
    return (
        b"HTTP/1.1 503 Service Unavailable\r\n"
        b"Content-Type: application/json; charset=utf-8\r\n"
        b"Retry-After: %d\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
        % (RETRY_AFTER_S, len(body), body)
    )


async def listen(
    runner: web.BaseRunner,
    host: str,
    port: int,
    *,
    role: str,
    settings: tuple[str, str],
    reuse_port: bool = False,
    max_connections: ConnectionLimit | None = None,
) -> Listener:
    """Serve ``runner``'s server (an application or a low-level one) on ``host``, on ``port``.

    Every address ``host`` names is bound.

    Args:
        runner: a set-up aiohttp runner.
        host: the address (or name) to bind; empty for every interface.
        port: the port to bind.
        role: the role's name, for the refusal metric and log lines.
        settings: the names of the two ``Settings`` fields ``host`` and ``port``
            come from, so that an error names the variables to change.
        reuse_port: share the port with other processes (``SO_REUSEPORT``).
        max_connections: the most connections held at once, past the open-files
            limit's own bound; ``None``: that bound only.

    Raises:
        ConfigError: ``host`` does not resolve, or an address cannot be bound
            (in use, not an address of this host...).

    """
    server = runner.server
    if server is None:
        raise RuntimeError("call runner.setup() before listen()")
    change = " and ".join(variable_name("", field) for field in settings)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror}; check {change}"
        ) from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in dict.fromkeys(infos):
            try:
                sock = socket.socket(family, kind, proto)
            except OSError:  # a family this host lacks (IPv6 in some containers), as asyncio
                continue
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:  # one socket per family, as asyncio does
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise ConfigError(
                    f"cannot listen on {address[0]}:{address[1]}: {exc.strerror}; "
                    f"stop what holds it, or change {change}"
                ) from None
            sock.listen(ACCEPT_BACKLOG)
            sock.setblocking(False)
        if not sockets:
            raise ConfigError(
                f"cannot listen on {host}:{port}: no address this host supports; check {change}"
            )
    except (OSError, ConfigError):
        for sock in sockets:
            sock.close()
        raise
    limit, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return Listener(sockets, server, role=role, limit=limit, max_connections=max_connections)


__all__ = [
    "RESERVED_DESCRIPTORS",
    "RETRY_AFTER_S",
    "ConnectionLimit",
    "Listener",
    "listen",
    "raise_open_files_limit",
]
