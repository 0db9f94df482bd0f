"""Text UTF-8 cannot carry, in headers, tokens, paths and routing fields: a 4xx or a record.

HTTP headers are bytes; aiohttp hands the ones that are not UTF-8 over as lone
surrogates (``surrogateescape``). JSON may hold lone surrogates (``\\ud800``),
NULs and control characters in any string. None of it may end in a 500, nor
in a record the Avro codec or the Kafka client cannot write: what the receiver
keeps is UTF-8, unreadable characters replaced by U+FFFD.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from mediaflow.config import REPO_ROOT, Settings
from mediaflow.kafka.topics import load_layout
from tests.integration.producers.test_webhook_ingest import avro_decode
from tests.support.kafka import read_all
from tests.support.webhook import (
    EVOLUTION_SECRET,
    WAPI_INSTANCE,
    WAPI_SECRET,
    serving,
    write_tenants,
)

pytestmark = pytest.mark.integration

PAYLOADS = REPO_ROOT / "tests" / "fixtures" / "payloads"
IMAGE = json.loads((PAYLOADS / "wapi_image.json").read_text())


async def exchange(
    port: int, target: str, body: bytes, extra_headers: bytes = b""
) -> tuple[int, dict]:
    """Send one raw request; return its status and JSON answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"POST {target} HTTP/1.1\r\nHost: receiver\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n".encode()
            + extra_headers
            + b"\r\n"
            + body
        )
        async with asyncio.timeout(30):
            answer = await reader.read()
    finally:
        writer.close()
    head, _, content = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(content)


def body_with(**fields: object) -> bytes:
    """The W-API image fixture with top-level fields replaced, as JSON with escapes."""
    return json.dumps({**IMAGE, **fields}).encode()


async def test_header_bytes_that_are_not_utf8_are_kept_replaced_never_a_500(
    settings: Settings, tmp_path: Path
) -> None:
    async with serving(settings, write_tenants(tmp_path)) as port:
        status, answer = await exchange(
            port,
            f"/webhooks/wapi?token={WAPI_SECRET}",
            body_with(),
            b"User-Agent: W-API \xff\xfe\r\nX-Forwarded-For: \xc3\r\nX-Request-Id: ok\r\n",
        )
    assert status == 200, answer
    [record] = read_all(settings, load_layout(settings.kafka).webhooks)
    kept = avro_decode(record.value())["headers"]
    assert kept["user-agent"].startswith("W-API \ufffd")
    assert kept["x-forwarded-for"] == "\ufffd"
    assert kept["x-request-id"] == "ok"


@pytest.mark.parametrize(
    "token_header",
    [b"X-Webhook-Token: \xff", b"X-Webhook-Token: wapi-secret-for-webhook-tests\xff"],
    ids=["garbage", "the-secret-plus-a-byte"],
)
async def test_a_token_header_that_is_not_utf8_is_a_401(
    settings: Settings, tmp_path: Path, token_header: bytes
) -> None:
    async with serving(settings, write_tenants(tmp_path)) as port:
        answer = await exchange(port, "/webhooks/wapi", body_with(), token_header + b"\r\n")
    assert answer == (401, {"error": "unauthorized", "detail": "unknown instance or wrong token"})


async def test_routing_fields_with_surrogates_nuls_and_controls_are_recorded_utf8_safe(
    settings: Settings, tmp_path: Path
) -> None:
    message_id = "M\ud800\x00\x1b[31m\udfff"
    chat_id = "5511\x00\u202e\ud83d"
    body = body_with(messageId=message_id, chat={"id": chat_id})
    async with serving(settings, write_tenants(tmp_path)) as port:
        status, answer = await exchange(port, f"/webhooks/wapi?token={WAPI_SECRET}", body)
    assert status == 200, answer
    [record] = read_all(settings, load_layout(settings.kafka).webhooks)
    value = avro_decode(record.value())
    assert value["message_id"] == "M\ufffd\x00\x1b[31m\ufffd"
    assert value["chat_id"] == "5511\x00\u202e\ufffd"
    assert value["body"] == body  # the body itself byte for byte
    assert record.key() == f"{WAPI_INSTANCE}|5511\x00\u202e\ufffd".encode()


async def test_evolution_routing_fields_with_surrogates_and_nuls_are_recorded_utf8_safe(
    settings: Settings, tmp_path: Path
) -> None:
    payload = json.loads((PAYLOADS / "evolution_image.json").read_text())
    payload["data"]["key"].update(id="K\udfff\x00", remoteJid="\ud800@s.whatsapp.net\x07")
    async with serving(settings, write_tenants(tmp_path)) as port:
        status, answer = await exchange(
            port,
            "/webhooks/evolution",
            json.dumps(payload).encode(),
            f"apikey: {EVOLUTION_SECRET}\r\n".encode(),
        )
    assert status == 200, answer
    [record] = read_all(settings, load_layout(settings.kafka).webhooks)
    value = avro_decode(record.value())
    assert (value["message_id"], value["chat_id"]) == ("K\ufffd\x00", "\ufffd@s.whatsapp.net\x07")


@pytest.mark.parametrize(
    "instance", [WAPI_INSTANCE + "\ud800", "\ud800", WAPI_INSTANCE + "\x00", "\x00", "\x1b"]
)
async def test_an_instance_id_with_surrogates_or_controls_is_a_401(
    settings: Settings, tmp_path: Path, instance: str
) -> None:
    async with serving(settings, write_tenants(tmp_path)) as port:
        status, answer = await exchange(
            port, f"/webhooks/wapi?token={WAPI_SECRET}", body_with(instanceId=instance)
        )
    assert status == 401, answer
    assert read_all(settings, load_layout(settings.kafka).webhooks) == []


@pytest.mark.parametrize("path", ["/webhooks/%ff", "/%ED%A0%80", "/webhooks/wapi%00"])
async def test_a_path_that_is_not_utf8_is_a_404(
    settings: Settings, tmp_path: Path, path: str
) -> None:
    async with serving(settings, write_tenants(tmp_path)) as port:
        status, answer = await exchange(port, f"{path}?token={WAPI_SECRET}", body_with())
    assert status == 404, answer
    assert answer["error"] == "not_found"
