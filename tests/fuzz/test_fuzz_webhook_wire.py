"""The webhook receiver under broken HTTP on a raw socket: never a 500, never an error logged.

Every combination of body encoding (plain, gzip, deflate, gzip that does not
decode or lacks its trailer, a coding not decoded, codings stacked), framing
(right, short and long ``Content-Length``; chunked), ``Expect: 100-continue``,
content type, and a client that hangs up half-way, sent at once to the real
``serve()``. A client can make the receiver refuse, time out or drop a
connection; it cannot make it answer 500 or log an error.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import itertools
import json
import sys
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from mediaflow import logging as mflog
from mediaflow.config import REPO_ROOT, Settings
from tests.support.webhook import WAPI_SECRET, answers_counted, serving, write_tenants

pytestmark = pytest.mark.integration

BODY = (REPO_ROOT / "tests" / "fixtures" / "payloads" / "wapi_image.json").read_bytes()
ENCODINGS: dict[str, tuple[str | None, Callable[[bytes], bytes]]] = {
    "plain": (None, lambda body: body),
    "gzip": ("gzip", gzip.compress),
    "deflate": ("deflate", zlib.compress),
    "gzip that does not decode": ("gzip", lambda body: body[:50]),
    "gzip without its trailer": ("x-gzip", lambda body: gzip.compress(body)[:-8]),
    "a coding not decoded": ("br", lambda body: body),
    "codings stacked": ("gzip, deflate", lambda body: zlib.compress(gzip.compress(body))),
}
FRAMINGS = ("content-length", "short content-length", "long content-length", "chunked")
CONTENT_TYPES = ("application/json", "text/plain")
GIVE_UP_S = 30.0
"""How long a connection may stay open: the server must close every one of them by itself."""


def raw_request(encoding: str, framing: str, expect: bool, content_type: str) -> bytes:
    header, encode = ENCODINGS[encoding]
    body = encode(BODY)
    head = f"POST /webhooks/wapi?token={WAPI_SECRET} HTTP/1.1\r\nHost: receiver\r\n"
    head += f"Content-Type: {content_type}\r\n"
    if header:
        head += f"Content-Encoding: {header}\r\n"
    if expect:
        head += "Expect: 100-continue\r\n"
    if framing == "chunked":
        half = len(body) // 2
        parts = (body[:half], body[half:])
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
        head += "Transfer-Encoding: chunked\r\n"
    else:
        declared = len(body) + {"short": -10, "long": 10}.get(framing.split()[0], 0)
        head += f"Content-Length: {declared}\r\n"
    return head.encode() + b"\r\n" + body


CASES = [
    (*combination, hang_up)
    for combination in itertools.product(ENCODINGS, FRAMINGS, (False, True), CONTENT_TYPES)
    for hang_up in (False, True)
]


@pytest.fixture
async def receiver(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[int, io.StringIO]]:
    """The receiver on a free port, with its log captured as JSON lines."""
    logged = io.StringIO()
    mflog.configure(fmt="json", level="info", stream=logged)
    try:
        async with serving(
            settings, write_tenants(tmp_path), webhook_body_timeout_s=0.5, http_idle_timeout_s=2.0
        ) as port:
            yield port, logged
    finally:
        mflog.configure(fmt="json", level="warning", stream=sys.__stderr__)


async def send(port: int, raw: bytes, hang_up: bool) -> bytes:
    """Send ``raw`` (or its first half, then hang up); return what came back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw[: len(raw) // 2] if hang_up else raw)
    await writer.drain()
    if hang_up:
        writer.close()
        return b""
    try:
        # Until the server closes: after its answer and the idle timeout, or after
        # aiohttp's 10 s of lingering for the rest of a body it refused unread.
        async with asyncio.timeout(GIVE_UP_S):
            return await reader.read()
    finally:
        writer.close()


async def test_no_broken_request_gets_a_500_or_an_error_in_the_log(
    receiver: tuple[int, io.StringIO],
) -> None:
    port, logged = receiver
    server_errors_before = answers_counted(500)

    answers = await asyncio.gather(
        *(send(port, raw_request(*case[:4]), hang_up=case[4]) for case in CASES)
    )
    async with asyncio.timeout(GIVE_UP_S):  # the hung-up requests' handlers finish too
        while REGISTRY.get_sample_value("mediaflow_webhook_in_flight"):
            await asyncio.sleep(0.05)

    assert answers_counted(500) == server_errors_before
    statuses = {
        line.split(b" ")[1] for a in answers for line in a.split(b"\r\n") if line[:5] == b"HTTP/"
    }
    assert b"500" not in statuses
    assert {b"200", b"400", b"408", b"415"} <= statuses  # the cases reached every refusal
    lines = [json.loads(line) for line in logged.getvalue().splitlines()]
    assert [line for line in lines if line["level"] in ("error", "critical")] == []
    assert WAPI_SECRET not in logged.getvalue()
