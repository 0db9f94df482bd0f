import asyncio
import contextlib
import io
import json
import os
import resource
import socket
from collections.abc import Iterator

import pytest
from aiohttp import web

from mediaflow.serving import ACCEPT_PAUSE_S, ConnectionLimit, listen, raise_open_files_limit


@pytest.fixture
def open_files_limit() -> Iterator[tuple[int, int]]:
    """This process's limit, put back after the test."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, limit)


def test_a_soft_open_files_limit_below_the_hard_one_is_raised_to_it(
    open_files_limit: tuple[int, int], log_lines: io.StringIO
) -> None:
    _soft, hard = open_files_limit
    if hard == resource.RLIM_INFINITY or hard < 512:
        pytest.skip(f"needs a finite hard limit of at least 512 (this one: {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    assert raise_open_files_limit() == hard

    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    (line,) = [json.loads(text) for text in log_lines.getvalue().splitlines()]
    assert (line["event"], line["before"], line["after"]) == ("open_files_limit_raised", 256, hard)


def test_a_soft_limit_already_at_the_hard_one_is_left_without_a_word(
    open_files_limit: tuple[int, int], log_lines: io.StringIO
) -> None:
    _soft, hard = open_files_limit
    if hard == resource.RLIM_INFINITY:
        pytest.skip("needs a finite hard limit")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    assert raise_open_files_limit() == hard

    assert log_lines.getvalue() == ""


async def test_out_of_descriptors_accepting_pauses_says_so_once_and_then_serves_the_client(
    open_files_limit: tuple[int, int], log_lines: io.StringIO
) -> None:
    app = web.Application()
    app.router.add_get("/", _ok)
    runner = web.AppRunner(app)
    await runner.setup()
    listener = await listen(
        runner, "127.0.0.1", 0, role="test", settings=("webhook_host", "webhook_port")
    )
    port = listener.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    client = socket.socket()
    client.setblocking(False)
    try:
        lowest_free = os.dup(0)
        os.close(lowest_free)
        # No descriptor left for this process: the server's next accept() fails (EMFILE).
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, open_files_limit[1]))
        try:
            await loop.sock_connect(client, ("127.0.0.1", port))
            await asyncio.sleep(ACCEPT_PAUSE_S * 2.5)  # the pause, and a retry that fails too
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, open_files_limit)
        await loop.sock_sendall(client, b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        answer = await asyncio.wait_for(loop.sock_recv(client, 4096), timeout=10)
    finally:
        client.close()
        listener.close()
        await runner.cleanup()
    assert answer.startswith(b"HTTP/1.1 200 OK")
    failures = [
        line
        for line in map(json.loads, log_lines.getvalue().splitlines())
        if line["event"] == "accept_failed"
    ]
    assert [(f["level"], f["reason"]) for f in failures] == [("error", "Too many open files")]


async def _ok(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def test_past_the_connection_limit_a_client_gets_503_until_a_connection_ends(
    log_lines: io.StringIO,
) -> None:
    app = web.Application()
    app.router.add_get("/", _ok)
    runner = web.AppRunner(app)
    await runner.setup()
    listener = await listen(
        runner,
        "127.0.0.1",
        0,
        role="test",
        settings=("webhook_host", "webhook_port"),
        max_connections=ConnectionLimit(3, "webhook_max_connections"),
    )
    port = listener.sockets[0].getsockname()[1]
    clients: list[socket.socket] = []
    try:
        for _ in range(4):
            clients.append(await _connect(port))
        refused = await _read(clients[3])  # at once, without a request
        assert refused.startswith(b"HTTP/1.1 503 ")
        assert json.loads(refused.partition(b"\r\n\r\n")[2]) == {
            "error": "too_many_connections",
            "detail": "the server holds as many connections as it may (3); retry in 5 s",
        }
        assert (await _get(clients[0])).startswith(b"HTTP/1.1 200 OK")  # admitted ones serve

        clients[0].close()  # one ends: its place is free
        answer = b""
        for _ in range(100):
            again = await _connect(port)
            clients.append(again)
            with contextlib.suppress(OSError):  # refused: the server may close first
                answer = await _get(again)
                if answer.startswith(b"HTTP/1.1 200 OK"):
                    break
            await asyncio.sleep(0.05)  # the server has not seen the close yet
        assert answer.startswith(b"HTTP/1.1 200 OK")
    finally:
        for client in clients:
            client.close()
        listener.close()
        await runner.cleanup()
    (warning,) = [
        line
        for line in map(json.loads, log_lines.getvalue().splitlines())
        if line["event"] == "connections_refused"
    ]
    assert "MEDIAFLOW_WEBHOOK_MAX_CONNECTIONS" in warning["hint"]


async def _connect(port: int) -> socket.socket:
    client = socket.socket()
    client.setblocking(False)
    await asyncio.get_running_loop().sock_connect(client, ("127.0.0.1", port))
    return client


async def _get(client: socket.socket) -> bytes:
    await asyncio.get_running_loop().sock_sendall(client, b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    return await _read(client)


async def _read(client: socket.socket) -> bytes:
    return await asyncio.wait_for(asyncio.get_running_loop().sock_recv(client, 4096), timeout=10)
