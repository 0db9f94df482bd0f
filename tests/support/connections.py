"""Hold many raw connections to a server and see which ones it has answered."""

from __future__ import annotations

import select
import socket
from contextlib import ExitStack

from mediaflow.serving import RESERVED_DESCRIPTORS

OPEN_FILES = RESERVED_DESCRIPTORS + 150
"""An open-files limit for a server under test: room for about 150 connections."""

PAST_THE_LIMIT = OPEN_FILES + 100
"""More connections than such a server has descriptors."""


def hold(stack: ExitStack, port: int, count: int) -> list[socket.socket]:
    """Open ``count`` connections to ``port`` on loopback, closed when ``stack`` closes."""
    return [
        stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
        for _ in range(count)
    ]


def answered(connections: list[socket.socket]) -> list[socket.socket]:
    """The connections the server has written to, or closed, by now (in their order)."""
    poller = select.poll()
    for connection in connections:
        poller.register(connection, select.POLLIN)
    ready = {fd for fd, _events in poller.poll(0)}
    return [c for c in connections if c.fileno() in ready]


def read_answer(connection: socket.socket) -> tuple[bytes, bytes]:
    """Read an answer up to the server's end of stream; return its head and body."""
    data = b""
    while chunk := connection.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body
