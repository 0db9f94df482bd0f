"""Clients that stop sending do not hold the receiver: 408 for a stalled body, closed idle sockets.

The server runs as ``mediaflow serve webhooks`` builds it
(:func:`mediaflow.producers.webhook.serve`), with both timeouts shortened; each client
is a raw socket, so it can stop mid-request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mediaflow.config import REPO_ROOT, Settings
from tests.support.webhook import answers_counted, request_head, serving, write_tenants

pytestmark = pytest.mark.integration

IMAGE = (REPO_ROOT / "tests" / "fixtures" / "payloads" / "wapi_image.json").read_bytes()
TIMEOUT_S = 0.5
GIVE_UP_S = 20.0
"""How long a test waits for the server to act; far above TIMEOUT_S, so a slow machine passes."""


@pytest.fixture
async def port(settings: Settings, tmp_path: Path) -> AsyncIterator[int]:
    async with serving(
        settings,
        write_tenants(tmp_path),
        webhook_body_timeout_s=TIMEOUT_S,
        http_idle_timeout_s=TIMEOUT_S,
    ) as port:
        yield port


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    async with asyncio.timeout(GIVE_UP_S):
        return await reader.read()


async def test_a_body_that_stops_arriving_gets_408_and_the_connection_is_closed(
    port: int,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request_head(len(IMAGE)) + IMAGE[:100])
    await writer.drain()

    answer = await read_until_closed(reader)
    writer.close()

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"Connection: close" in head
    refusal = json.loads(body)
    assert refusal["error"] == "body_timeout"
    assert refusal["detail"] == (
        "the body did not arrive within 0.5 s of the headers; send it whole and retry"
    )


async def test_a_body_sent_whole_is_still_accepted(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request_head(len(IMAGE)) + IMAGE)
    await writer.drain()
    async with asyncio.timeout(GIVE_UP_S):
        status_line = await reader.readline()
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 200 ")


async def test_a_client_that_hangs_up_mid_body_is_counted_as_499_not_as_our_error(
    port: int,
) -> None:
    before_499, before_500 = answers_counted(499), answers_counted(500)
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request_head(len(IMAGE)) + IMAGE[:100])
    await writer.drain()
    writer.close()

    async with asyncio.timeout(GIVE_UP_S):
        while answers_counted(499) == before_499:
            await asyncio.sleep(0.05)
    assert answers_counted(499) == before_499 + 1
    assert answers_counted(500) == before_500


@pytest.mark.parametrize(
    "sent",
    [b"", b"POST /webhooks/wapi HTTP/1.1\r\nHost: receiver\r\n"],
    ids=["nothing", "half the headers"],
)
async def test_a_connection_without_a_whole_request_is_closed(port: int, sent: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(sent)
    await writer.drain()
    assert await read_until_closed(reader) == b""
    writer.close()
