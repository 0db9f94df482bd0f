"""Webhook envelopes as the detector reads them, and a wait for its committed output."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

from confluent_kafka import Consumer, TopicPartition

from mediaflow.codec import AvroCodec
from mediaflow.config import REPO_ROOT, Settings
from mediaflow.events import WebhookReceived
from mediaflow.kafka import headers as h
from mediaflow.providers import parse_webhook

PAYLOADS = REPO_ROOT / "tests" / "fixtures" / "payloads"
CODEC = AvroCodec()
TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def image_body(message_id: str) -> bytes:
    body = json.loads((PAYLOADS / "wapi_image.json").read_text())
    body["messageId"] = message_id
    body["chat"]["id"] = f"55119{int(message_id[-6:], 16) % 10_000_000:07d}"
    return json.dumps(body).encode()


def envelope(body: bytes) -> WebhookReceived:
    payload = json.loads(body)
    return WebhookReceived(
        event_id=str(uuid.uuid4()),
        provider="wapi",
        client_id="client-a",
        instance_id=payload["instanceId"],
        message_id=payload["messageId"],
        chat_id=payload["chat"]["id"],
        event_type=payload["event"],
        received_at=datetime.now(UTC).replace(microsecond=0),
        headers={"traceparent": TRACE},
        body=body,
    )


def as_record(webhook: WebhookReceived) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    key = f"{webhook.instance_id}|{webhook.chat_id}".encode()
    headers = h.encode(
        {
            h.EVENT_ID: webhook.event_id,
            h.SCHEMA_FINGERPRINT: CODEC.fingerprint_of(WebhookReceived).hex(),
            h.TRACEPARENT: TRACE,
        }
    )
    return key, CODEC.encode(webhook), headers


def media_id_of(webhook: WebhookReceived) -> str:
    [media] = parse_webhook(
        "wapi", json.loads(webhook.body), client_id="client-a", instance_id=webhook.instance_id
    ).media
    return media.media_id


def wait_until_some_committed(settings: Settings, topic: str, timeout: float = 90) -> int:
    """Block until ``topic`` holds a committed record; return how many were seen."""
    reader = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"test-watch-{uuid.uuid4()}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    partitions = reader.list_topics(topic, timeout=10).topics[topic].partitions
    reader.assign([TopicPartition(topic, p, 0) for p in partitions])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            messages = reader.consume(num_messages=100, timeout=0.05)
            if any(m.error() is None for m in messages):
                return len(messages)
        raise AssertionError(f"nothing committed on {topic} after {timeout} s")
    finally:
        reader.close()


MEDIA_KEYS = (
    "imageMessage",
    "videoMessage",
    "ptvMessage",
    "audioMessage",
    "documentMessage",
    "stickerMessage",
)
WRAPPER_KEYS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
    "editedMessage",
)


def fanout_body(size: int = 1_000_000, message_id: str = "3EB0FA40F0F0F0F0F0F0") -> bytes:
    """A W-API webhook of at most ``size`` bytes built to fan out.

    Wrappers nested in wrappers, six ways at every level (within the parser's
    depth limit), and each level holding every media key with an empty
    object: an item the detector finds but can never download. A 1 MB body
    holds some 40,000 of them.
    """
    head = json.loads((PAYLOADS / "wapi_image.json").read_text())
    head["messageId"] = message_id
    frame = json.dumps({**head, "msgContent": None}).encode()
    content = _fanout_node(size - len(frame))
    body = frame.replace(b'"msgContent": null', b'"msgContent": ' + content.encode())
    assert len(body) <= size
    return body


def _fanout_node(budget: int) -> str:
    items = ",".join(f'"{key}":{{}}' for key in MEDIA_KEYS)
    room = budget - len(items) - 2
    wraps = []
    for index, wrapper in enumerate(WRAPPER_KEYS):
        share = room // (len(WRAPPER_KEYS) - index) - len(f',"{wrapper}":{{"message":}}')
        if share < len(items) + 2:
            break
        inner = _fanout_node(share)
        wraps.append(f',"{wrapper}":{{"message":{inner}}}')
        room -= len(wraps[-1])
    return "{" + items + "".join(wraps) + "}"
