"""The detector on real Kafka: every media exactly once, even when killed mid-batch."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.events import MediaDetected, MediaDownloadRequested, WebhookReceived
from mediaflow.kafka import headers as h
from mediaflow.kafka.topics import load_layout
from mediaflow.providers import parse_webhook
from tests.support.kafka import produce, read_all
from tests.support.processes import spawn_role, stop

pytestmark = pytest.mark.integration

PAYLOADS = Path(__file__).resolve().parents[2] / "fixtures" / "payloads"
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


def test_sigkill_mid_batch_then_restart_yields_every_media_exactly_once_on_both_topics(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(batch_max_records=5, instance_name="detector-crash")
    layout = load_layout(settings.kafka)
    webhooks = [envelope(image_body(f"3EB0{i:016X}")) for i in range(400)]
    produce(settings, layout.webhooks, [as_record(w) for w in webhooks])
    expected = {media_id_of(w) for w in webhooks}

    first = spawn_role("detector", settings)
    try:
        wait_until_some_committed(settings, layout.media_events)
    finally:
        first.kill()  # SIGKILL: no shutdown, an open transaction is left behind
        first.wait(timeout=10)
    seen_before_restart = len(read_all(settings, layout.media_events))
    assert 0 < seen_before_restart < len(expected), "the kill must land mid-way for this test"

    second = spawn_role("detector", settings, "--idle-exit", "3")
    try:
        assert second.wait(timeout=180) == 0
    finally:
        stop(second)

    requests = Counter(m.key().decode() for m in read_all(settings, layout.download_requests))
    detected = Counter(m.key().decode() for m in read_all(settings, layout.media_events))
    assert set(requests) == set(detected) == expected
    assert set(requests.values()) == set(detected.values()) == {1}


def test_one_webhook_delivered_three_times_gives_one_request_per_delivery_all_with_one_media_id(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(instance_name="detector-dup")
    layout = load_layout(settings.kafka)
    body = image_body("3EB0AAAABBBBCCCCDDDD")
    first = envelope(body)
    redelivered_by_provider = envelope(body)  # same body, new envelope (new event id)
    deliveries = [first, first, redelivered_by_provider]
    produce(settings, layout.webhooks, [as_record(w) for w in deliveries])

    proc = spawn_role("detector", settings, "--idle-exit", "2")
    try:
        assert proc.wait(timeout=120) == 0
    finally:
        stop(proc)

    requests = [
        CODEC.decode(m.value(), MediaDownloadRequested)
        for m in read_all(settings, layout.download_requests)
    ]
    detected = [
        CODEC.decode(m.value(), MediaDetected) for m in read_all(settings, layout.media_events)
    ]
    assert len(requests) == len(detected) == 3
    assert {r.media_id for r in requests} == {d.media_id for d in detected} == {media_id_of(first)}
    # The envelope read twice yields identical event ids: consumers can drop the copy.
    assert len({r.event_id for r in requests}) == 2
    assert {r.traceparent for r in requests} == {TRACE}


def test_second_copy_with_the_same_instance_name_fences_the_first_which_exits_with_an_error(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(instance_name="detector-twin")
    layout = load_layout(settings.kafka)
    produce(settings, layout.webhooks, [as_record(envelope(image_body("3EB0000000000000AAAA")))])
    zombie = spawn_role("detector", settings)
    try:
        wait_until_some_committed(settings, layout.media_events)
        successor = spawn_role("detector", settings, "--idle-exit", "2")
        try:
            assert successor.wait(timeout=120) == 0
        finally:
            stop(successor)
        assert zombie.wait(timeout=60) == 1
    finally:
        stop(zombie)
