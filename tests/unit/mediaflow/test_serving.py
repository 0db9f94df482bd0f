import asyncio
import io
import json
import os
import resource
import socket
from collections.abc import Iterator

import pytest
from aiohttp import web

from mediaflow.serving import ACCEPT_PAUSE_S, listen, raise_open_files_limit


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
