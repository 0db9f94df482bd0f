"""A caller without a tenant's secret is refused from the request's head, its body unread.

Every provider sends the secret in the query string or a header, so the
receiver knows before the body whether the caller holds the secret of some
tenant of the endpoint. One that does not gets its 401 at once and the
connection is closed: its body is never waited for, read or inflated.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mediaflow.config import Settings
from tests.support.webhook import EVOLUTION_SECRET, WAPI_SECRET, serving, write_tenants

pytestmark = pytest.mark.integration

BODY_TIMEOUT_S = 120.0
"""Far longer than a test waits: an answer that comes is not the body timeout's 408."""

WAIT_S = 30.0
"""How long a test waits for an answer before calling it missing."""

BOMB = gzip.compress(b" " * (1024 * 1024 - 64))
"""About 1 KB on the wire, 1 MB once inflated: the body of the amplification attack."""


@pytest.fixture
async def port(settings: Settings, tmp_path: Path) -> AsyncIterator[int]:
    async with serving(
        settings, write_tenants(tmp_path), webhook_body_timeout_s=BODY_TIMEOUT_S
    ) as port:
        yield port


async def answer_to_a_body_never_finished(port: int, head: str) -> bytes:
    """Send ``head`` and all of :data:`BOMB` but its trailer; return what comes back.

    Read until the server closes the connection, the only way the answer can be
    complete while the client still owes part of its body.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"{head}Host: receiver\r\nContent-Type: application/json\r\n"
            f"Content-Encoding: gzip\r\nContent-Length: {len(BOMB)}\r\n\r\n".encode()
            + BOMB[:-8]
        )
        async with asyncio.timeout(WAIT_S):
            return await reader.read()
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("target", "token_header"),
    [
        ("/webhooks/wapi", ""),
        ("/webhooks/wapi?token=", ""),
        ("/webhooks/wapi?token=wrong", ""),
        ("/webhooks/wapi", "X-Webhook-Token: wrong\r\n"),
        (f"/webhooks/wapi?token={EVOLUTION_SECRET}", ""),  # another provider's tenant
        (f"/webhooks/evolution?token={WAPI_SECRET}", ""),
        ("/webhooks/evolution", "apikey: wrong\r\n"),
        ("/webhooks/zapi?token=%ff", ""),
    ],
    ids=[
        "no-token",
        "empty-token",
        "wrong-token",
        "wrong-header",
        "evolution-secret-on-wapi",
        "wapi-secret-on-evolution",
        "wrong-apikey",
        "not-utf8",
    ],
)
async def test_no_known_token_gets_a_401_without_its_body_being_awaited(
    port: int, target: str, token_header: str
) -> None:
    answer = await answer_to_a_body_never_finished(
        port, f"POST {target} HTTP/1.1\r\n{token_header}"
    )
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert answer.endswith(
        b'{"error": "unauthorized", "detail": "unknown instance or wrong token"}'
    )


async def test_a_client_waiting_for_100_continue_without_a_token_gets_the_401_instead(
    port: int,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"POST /webhooks/wapi HTTP/1.1\r\nHost: receiver\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\nExpect: 100-continue\r\n\r\n"
        )
        async with asyncio.timeout(WAIT_S):
            answer = await reader.read()
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert b"100 Continue" not in answer


async def test_the_right_token_still_gets_its_body_read(port: int) -> None:
    # The same body, sent whole with the tenant's secret, is read and inflated:
    # 1 MB of spaces, which is not JSON.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"POST /webhooks/wapi?token={WAPI_SECRET} HTTP/1.1\r\nHost: receiver\r\n"
            f"Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
            f"Content-Length: {len(BOMB)}\r\n\r\n".encode()
            + BOMB
        )
        async with asyncio.timeout(WAIT_S):
            answer = await reader.readuntil(b"}")
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b'"invalid_json"' in answer
