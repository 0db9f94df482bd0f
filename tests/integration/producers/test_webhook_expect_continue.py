"""``Expect: 100-continue``: the body is asked for only once its headers pass.

HTTP clients (curl among them, for bodies over 1 KiB) may send the headers,
then wait for ``100 Continue`` before the body. The receiver answers that only
after checking the declared size and content type, so a body it would refuse is
never sent. Raw sockets against the real ``serve()``, so the test sees every
line the server writes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mediaflow.config import REPO_ROOT, Settings
from tests.support.webhook import request_head, serving, write_tenants

pytestmark = pytest.mark.integration

IMAGE = (REPO_ROOT / "tests" / "fixtures" / "payloads" / "wapi_image.json").read_bytes()
GIVE_UP_S = 20.0
CONTINUE = "100-continue"


@pytest.fixture
async def port(settings: Settings, tmp_path: Path) -> AsyncIterator[int]:
    async with serving(settings, write_tenants(tmp_path)) as port:
        yield port


async def read_head(reader: asyncio.StreamReader) -> bytes:
    """One answer's status line and headers."""
    async with asyncio.timeout(GIVE_UP_S):
        return await reader.readuntil(b"\r\n\r\n")


async def test_a_client_waiting_for_100_continue_gets_it_then_a_200_for_its_body(
    port: int,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request_head(len(IMAGE), expect=CONTINUE))
        await writer.drain()
        interim = await read_head(reader)
        writer.write(IMAGE)
        await writer.drain()
        final = await read_head(reader)
    finally:
        writer.close()
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert final.startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize(
    ("head", "status", "error"),
    [
        (request_head(1024 * 1024 + 1, expect=CONTINUE), 413, "payload_too_large"),
        (
            request_head(len(IMAGE), content_type="text/plain", expect=CONTINUE),
            415,
            "unsupported_media_type",
        ),
        (request_head(len(IMAGE), expect="something-else"), 417, "expectation_failed"),
    ],
    ids=["over the size limit", "not JSON", "unknown expectation"],
)
async def test_a_body_refused_on_its_headers_is_never_asked_for(
    port: int, head: bytes, status: int, error: str
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)  # and no body: a client that waits for 100 Continue
        await writer.drain()
        answer = await read_head(reader)
        length = int(answer.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        async with asyncio.timeout(GIVE_UP_S):
            refusal = json.loads(await reader.readexactly(length))
    finally:
        writer.close()
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())
    assert refusal["error"] == error
