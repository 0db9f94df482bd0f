"""Request header bytes that are not UTF-8 do not stop a webhook from being accepted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mediaflow.config import REPO_ROOT, Settings
from mediaflow.kafka.topics import load_layout
from tests.support.detector import CODEC
from tests.support.kafka import read_all
from tests.support.webhook import WAPI_SECRET, serving, write_tenants

pytestmark = pytest.mark.integration

BODY = (REPO_ROOT / "tests" / "fixtures" / "payloads" / "wapi_text.json").read_bytes()


async def raw_post(port: int, extra_headers: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST /webhooks/wapi?token={WAPI_SECRET} HTTP/1.1\r\nHost: receiver\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n".encode()
        + extra_headers
        + b"Connection: close\r\n\r\n"
        + BODY
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=20)
    writer.close()
    return answer


async def test_a_header_that_is_not_utf8_is_kept_with_replacement_characters(
    settings: Settings, tmp_path: Path
) -> None:
    async with serving(settings, write_tenants(tmp_path)) as port:
        answer = await raw_post(port, b"User-Agent: bot \xff\xfe/1.0\r\n")
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    [record] = read_all(settings, load_layout(settings.kafka).webhooks)
    envelope = CODEC.decode(record.value())
    assert envelope.headers["user-agent"] == "bot \ufffd\ufffd/1.0"
    assert envelope.body == BODY
