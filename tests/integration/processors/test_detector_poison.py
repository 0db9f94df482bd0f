"""Poison webhooks go to the dead-letter topic and the partition keeps moving (real Kafka)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.events import MediaDownloadRequested, WebhookReceived
from mediaflow.kafka import headers as h
from mediaflow.kafka.topics import load_layout
from mediaflow.processors.detector import STAGE
from tests.support.kafka import produce, read_all
from tests.support.processes import spawn_role, stop

pytestmark = pytest.mark.integration

PAYLOADS = Path(__file__).resolve().parents[2] / "fixtures" / "payloads"
CODEC = AvroCodec()
KEY = b"3B6XIW-ZTS923-GEAY6V|5511988887777"  # one key: one partition, in this order


def envelope(body: bytes, message_id: str) -> bytes:
    return CODEC.encode(
        WebhookReceived(
            event_id=str(uuid.uuid4()),
            provider="wapi",
            client_id="client-a",
            instance_id="3B6XIW-ZTS923-GEAY6V",
            message_id=message_id,
            event_type="webhookReceived",
            received_at=datetime.now(UTC).replace(microsecond=0),
            body=body,
        )
    )


def image(message_id: str) -> bytes:
    body = json.loads((PAYLOADS / "wapi_image.json").read_text())
    body["messageId"] = message_id
    return envelope(json.dumps(body).encode(), message_id)


def drain_detector(settings: Settings) -> None:
    """Run the detector until it has been idle 2 s; it must exit 0."""
    proc = spawn_role("detector", settings, "--idle-exit", "2")
    try:
        assert proc.wait(timeout=120) == 0
    finally:
        stop(proc)


def test_undecodable_and_non_json_records_are_dead_lettered_and_later_records_processed(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(instance_name="detector-poison")
    layout = load_layout(settings.kafka)
    produce(
        settings,
        layout.webhooks,
        [
            (KEY, image("3EB0000000000000000A")),
            (KEY, b"\xc3\x01 definitely not an envelope"),
            (KEY, envelope(b"<html>502 Bad Gateway</html>", "3EB0000000000000000B")),
            (KEY, image("3EB0000000000000000C")),
        ],
    )

    drain_detector(settings)

    dead = sorted(
        (h.to_dict(m.headers()) for m in read_all(settings, layout.dead_letters)),
        key=lambda headers: int(headers[h.DLQ_ORIGINAL_OFFSET]),
    )
    assert [d[h.DLQ_ERROR_KIND] for d in dead] == ["undecodable", "invalid_payload"]
    assert [d[h.DLQ_ORIGINAL_OFFSET] for d in dead] == ["1", "2"]
    for headers in dead:
        assert headers[h.DLQ_ORIGINAL_TOPIC] == layout.webhooks
        assert headers[h.DLQ_STAGE] == "detector"
        assert headers[h.DLQ_CONSUMER_GROUP] == STAGE.clients(settings).group_id
        assert h.DLQ_ORIGINAL_PARTITION in headers
    requests = [
        CODEC.decode(m.value(), MediaDownloadRequested)
        for m in read_all(settings, layout.download_requests)
    ]
    assert sorted(r.info.message_id for r in requests) == [
        "3EB0000000000000000A",
        "3EB0000000000000000C",
    ]


def test_dead_lettered_record_keeps_its_original_bytes(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(instance_name="detector-poison-bytes")
    layout = load_layout(settings.kafka)
    value = b"\x00\x01 not avro at all"
    produce(settings, layout.webhooks, [(KEY, value)])

    drain_detector(settings)

    [dead] = read_all(settings, layout.dead_letters)
    assert (dead.key(), dead.value()) == (KEY, value)


def test_a_poison_webhook_as_large_as_the_body_limit_is_dead_lettered_whole(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(instance_name="detector-poison-large")
    layout = load_layout(settings.kafka)
    html = b"<html>" + b"5" * (settings.webhook_max_body_bytes - 13) + b"</html>"
    value = envelope(html, "3EB0000000000000000D")
    produce(settings, layout.webhooks, [(KEY, value), (KEY, image("3EB0000000000000000E"))])

    drain_detector(settings)

    [dead] = read_all(settings, layout.dead_letters)
    assert h.to_dict(dead.headers())[h.DLQ_ERROR_KIND] == "invalid_payload"
    assert dead.value() == value  # all of it, over a mebibyte
    assert len(read_all(settings, layout.download_requests)) == 1  # and the partition moved on
