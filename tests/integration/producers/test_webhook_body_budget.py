"""The bytes of bodies the receiver holds at once are bounded; past that, 503 and nothing lost.

Each body is counted from its first byte read (decoded: a gzip body counts what
it inflates to) until Kafka has its record. A request that would take the total
past ``MEDIAFLOW_WEBHOOK_BODY_BUDGET_BYTES`` gets 503 with ``Retry-After``, so
its sender retries; the others go on as before.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mediaflow.config import REPO_ROOT, Settings
from mediaflow.kafka.topics import load_layout
from mediaflow.serving import RETRY_AFTER_S
from tests.support.kafka import read_all
from tests.support.webhook import WAPI_SECRET, scraped, serving, write_tenants

pytestmark = pytest.mark.integration

MAX_BODY = 64 * 1024
BUDGET = 96 * 1024
HELD = 50 * 1024
"""What the first request sends, then holds: over half the budget."""

IMAGE = json.loads((REPO_ROOT / "tests" / "fixtures" / "payloads" / "wapi_image.json").read_text())


def padded_to(size: int) -> bytes:
    """The W-API image webhook, padded to exactly ``size`` bytes."""
    filler = size - len(json.dumps({**IMAGE, "padding": ""}).encode())
    return json.dumps({**IMAGE, "padding": "x" * filler}).encode()


BODY = padded_to(60 * 1024)


async def held_bytes(port: int) -> float:
    # In a thread: the receiver serves /metrics on this test's own event loop.
    return await asyncio.to_thread(scraped, port, "mediaflow_webhook_body_bytes_in_flight")


@pytest.fixture
async def port(settings: Settings, tmp_path: Path) -> AsyncIterator[int]:
    async with serving(
        settings,
        write_tenants(tmp_path),
        webhook_max_body_bytes=MAX_BODY,
        webhook_body_budget_bytes=BUDGET,
        webhook_body_timeout_s=60,
    ) as port:
        yield port


async def send(
    writer: asyncio.StreamWriter, body: bytes, *, declared: int | None = None, coding: str = ""
) -> None:
    head = (
        f"POST /webhooks/wapi?token={WAPI_SECRET} HTTP/1.1\r\nHost: receiver\r\n"
        f"Content-Type: application/json\r\nContent-Length: {declared or len(body)}\r\n"
    )
    if coding:
        head += f"Content-Encoding: {coding}\r\n"
    writer.write(head.encode() + b"\r\n" + body)
    await writer.drain()


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], dict]:
    """Read one answer: its status, headers (lower-case names) and JSON body."""
    async with asyncio.timeout(30):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        content = await reader.readexactly(int(headers["content-length"]))
    return int(lines[0].split()[1]), headers, json.loads(content)


async def post(port: int, body: bytes, coding: str = "") -> tuple[int, dict[str, str], dict]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await send(writer, body, coding=coding)
        return await answer(reader)
    finally:
        writer.close()


async def wait_until_held(port: int, at_least: int) -> None:
    async with asyncio.timeout(30):
        while await held_bytes(port) < at_least:
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("coding", ["", "gzip"], ids=["plain", "gzip-counts-inflated"])
async def test_a_body_past_the_budget_gets_503_and_every_webhook_is_recorded_after_a_retry(
    port: int, settings: Settings, coding: str
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await send(writer, BODY[:HELD], declared=len(BODY))  # the rest comes later
        await wait_until_held(port, HELD)

        # 60 KiB more, 3 KiB on the wire when gzipped: past the 96 KiB budget either way.
        wire = gzip.compress(BODY) if coding else BODY
        status, headers, refusal = await post(port, wire, coding)
        assert status == 503, refusal
        assert headers["retry-after"] == str(RETRY_AFTER_S)
        assert refusal["error"] == "too_busy"
        assert f"{BUDGET} bytes" in refusal["detail"]

        writer.write(BODY[HELD:])
        first, _, accepted = await answer(reader)
        assert first == 200, accepted
    finally:
        writer.close()
    assert await held_bytes(port) == 0  # given back once on Kafka

    retried, _, accepted_later = await post(port, wire, coding)
    assert retried == 200, accepted_later
    records = read_all(settings, load_layout(settings.kafka).webhooks)
    assert len(records) == 2


async def test_each_body_gives_its_share_back_so_many_in_turn_pass_the_budget(port: int) -> None:
    statuses = [(await post(port, padded_to(30 * 1024)))[0] for _ in range(5)]  # 150 KiB in all
    assert statuses == [200] * 5
    assert await held_bytes(port) == 0
