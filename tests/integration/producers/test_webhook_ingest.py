"""Accepted webhooks are on Kafka, decodable by any Avro implementation, before the 200."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import avro.io
import avro.schema
import pytest

from mediaflow.codec import AvroCodec
from mediaflow.config import REPO_ROOT, Settings
from mediaflow.events import WebhookReceived
from mediaflow.kafka.headers import to_dict
from mediaflow.kafka.topics import load_layout
from tests.support.kafka import read_all
from tests.support.webhook import (
    EVOLUTION_SECRET,
    WAPI_INSTANCE,
    WAPI_SECRET,
    receiver_client,
    write_tenants,
)

pytestmark = pytest.mark.integration

PAYLOADS = REPO_ROOT / "tests" / "fixtures" / "payloads"
SCHEMA = REPO_ROOT / "schemas" / "io.mediaflow.WebhookReceived.avsc"


def wapi_bodies() -> list[bytes]:
    """Every W-API fixture that has an instance id, as the provider would send it."""
    bodies = []
    for path in sorted(PAYLOADS.glob("wapi_*.json")):
        raw = path.read_bytes()
        if b'"instanceId"' in raw:
            bodies.append(raw)
    return bodies


def avro_decode(value: bytes) -> dict:
    """Decode with the Apache avro package, checking the single-object header."""
    schema = avro.schema.parse(SCHEMA.read_text())
    assert value[:2] == b"\xc3\x01"
    assert value[2:10] == AvroCodec().fingerprint_of(WebhookReceived)
    reader = avro.io.DatumReader(schema)
    return reader.read(avro.io.BinaryDecoder(io.BytesIO(value[10:])))


async def test_concurrent_wapi_posts_are_all_on_the_topic_byte_for_byte(
    settings: Settings, tmp_path: Path
) -> None:
    bodies = wapi_bodies()
    async with receiver_client(settings, write_tenants(tmp_path)) as client:

        async def post(body: bytes) -> tuple[int, dict]:
            response = await client.post(
                "/webhooks/wapi",
                data=body,
                params={"token": WAPI_SECRET},
                headers={"Content-Type": "application/json", "User-Agent": "W-API/1.0"},
            )
            return response.status, await response.json()

        answers = await asyncio.gather(*(post(body) for body in bodies))
    assert [status for status, _ in answers] == [200] * len(bodies)

    records = read_all(settings, load_layout(settings.kafka).webhooks)
    decoded = {avro_decode(r.value())["event_id"]: (r, avro_decode(r.value())) for r in records}
    assert set(decoded) == {answer["event_id"] for _, answer in answers}
    assert sorted(value["body"] for _, value in decoded.values()) == sorted(bodies)
    for record, value in decoded.values():
        payload = json.loads(value["body"])
        assert value["provider"] == "wapi"
        assert value["client_id"] == "2"
        assert value["instance_id"] == WAPI_INSTANCE
        assert value["event_type"] == payload["event"]
        assert value["message_id"] == payload.get("messageId")
        assert record.key() == f"{WAPI_INSTANCE}|{payload['chat']['id']}".encode()


async def test_record_headers_carry_event_id_fingerprint_and_traceparent(
    settings: Settings, tmp_path: Path
) -> None:
    body = (PAYLOADS / "wapi_image.json").read_bytes()
    async with receiver_client(settings, write_tenants(tmp_path)) as client:
        response = await client.post(
            "/webhooks/wapi",
            data=body,
            headers={"Content-Type": "application/json", "X-Webhook-Token": WAPI_SECRET},
        )
        assert response.status == 200
    [record] = read_all(settings, load_layout(settings.kafka).webhooks)
    headers = to_dict(record.headers())
    value = avro_decode(record.value())
    assert headers["mediaflow.event-id"] == value["event_id"]
    assert headers["mediaflow.schema-fingerprint"] == record.value()[2:10].hex()
    assert headers["traceparent"].startswith("00-")
    assert value["headers"]["traceparent"] == headers["traceparent"]


async def test_a_body_of_exactly_the_size_limit_is_on_the_topic_byte_for_byte(
    settings: Settings, tmp_path: Path
) -> None:
    # The default limit (1 MiB) plus the envelope is more than Kafka's own default
    # record size: the producer and the topic must both take it.
    limit = settings.webhook_max_body_bytes
    image = json.loads((PAYLOADS / "wapi_image.json").read_bytes())
    filler = limit - len(json.dumps({**image, "padding": ""}).encode())
    body = json.dumps({**image, "padding": "x" * filler}).encode()
    assert len(body) == limit
    async with receiver_client(settings, write_tenants(tmp_path)) as client:
        response = await client.post(
            f"/webhooks/wapi?token={WAPI_SECRET}",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        assert response.status == 200, await response.text()
    [record] = read_all(settings, load_layout(settings.kafka).webhooks)
    assert avro_decode(record.value())["body"] == body


async def test_an_incoming_traceparent_is_kept(settings: Settings, tmp_path: Path) -> None:
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    body = (PAYLOADS / "wapi_text.json").read_bytes()
    async with receiver_client(settings, write_tenants(tmp_path)) as client:
        response = await client.post(
            f"/webhooks/wapi?token={WAPI_SECRET}",
            data=body,
            headers={"Content-Type": "application/json", "traceparent": trace},
        )
        assert response.status == 200
    [record] = read_all(settings, load_layout(settings.kafka).webhooks)
    assert to_dict(record.headers())["traceparent"] == trace


async def test_envelope_keeps_allowed_request_headers_and_no_credentials(
    settings: Settings, tmp_path: Path
) -> None:
    body = (PAYLOADS / "wapi_text.json").read_bytes()
    async with receiver_client(settings, write_tenants(tmp_path)) as client:
        response = await client.post(
            "/webhooks/wapi",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Webhook-Token": WAPI_SECRET,
                "Authorization": "Bearer something",
                "X-Request-Id": "req-42",
                "X-Forwarded-For": "203.0.113.7",
            },
        )
        assert response.status == 200
    [record] = read_all(settings, load_layout(settings.kafka).webhooks)
    value = avro_decode(record.value())
    assert value["headers"]["x-request-id"] == "req-42"
    assert value["headers"]["x-forwarded-for"] == "203.0.113.7"
    assert "authorization" not in value["headers"]
    assert "x-webhook-token" not in value["headers"]
    assert WAPI_SECRET.encode() not in record.value()
    assert all(WAPI_SECRET.encode() not in v for _, v in record.headers())


async def test_evolution_webhook_authenticated_by_apikey_lands_with_its_provider(
    settings: Settings, tmp_path: Path
) -> None:
    body = (PAYLOADS / "evolution_image.json").read_bytes()
    async with receiver_client(settings, write_tenants(tmp_path)) as client:
        response = await client.post(
            "/webhooks/evolution",
            data=body,
            headers={"Content-Type": "application/json", "apikey": EVOLUTION_SECRET},
        )
        assert response.status == 200
    [record] = read_all(settings, load_layout(settings.kafka).webhooks)
    value = avro_decode(record.value())
    payload = json.loads(body)
    assert (value["provider"], value["client_id"], value["body"]) == ("evolution", "3", body)
    assert record.key() == f"loja-centro|{payload['data']['key']['remoteJid']}".encode()
