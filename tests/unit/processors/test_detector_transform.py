"""The detector's transform: one envelope in, the records to produce out (no Kafka)."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mediaflow.codec import AvroCodec
from mediaflow.errors import ErrorKind, InvalidPayload, UndecodableRecord
from mediaflow.events import (
    MediaDeadLettered,
    MediaDetected,
    MediaDownloadRequested,
    MediaType,
    WebhookReceived,
)
from mediaflow.kafka import headers as h
from mediaflow.kafka.records import InRecord, OutRecord
from mediaflow.kafka.routing import FailureRouter
from mediaflow.processors.detector.transform import Detection, OutputTopics, detect, read_webhook
from mediaflow.providers import Category
from tests.support.detector import fanout_body

PAYLOADS = Path(__file__).resolve().parents[2] / "fixtures" / "payloads"
TOPICS = OutputTopics(download_requests="requests", media_events="events")
ROUTER = FailureRouter(stage="detector", group_id="mediaflow-detector", dlq_topic="dlq")
NOW = datetime(2024, 11, 28, 12, 0, tzinfo=UTC)
TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CODEC = AvroCodec()


def payload(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def envelope(body: dict[str, Any] | bytes, *, event_id: str = "evt-1") -> WebhookReceived:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookReceived(
        event_id=event_id,
        provider="wapi",
        client_id="client-a",
        instance_id="3B6XIW-ZTS923-GEAY6V",
        event_type="webhookReceived",
        received_at=NOW,
        headers={"traceparent": TRACE},
        body=raw,
    )


def in_record(webhook: WebhookReceived, *, offset: int = 7) -> InRecord:
    return InRecord(
        topic="webhooks",
        partition=2,
        offset=offset,
        key=b"3B6XIW-ZTS923-GEAY6V|5511988887777",
        value=CODEC.encode(webhook),
        headers=h.encode({h.EVENT_ID: webhook.event_id, h.TRACEPARENT: TRACE}),
        timestamp=NOW,
    )


def run(webhook: WebhookReceived, *, now: datetime = NOW, max_media: int = 10) -> Detection:
    return detect(
        in_record(webhook),
        webhook,
        codec=CODEC,
        topics=TOPICS,
        router=ROUTER,
        now=now,
        max_media=max_media,
    )


def on(detection: Detection, topic: str) -> list[OutRecord]:
    return [out for out in detection.outputs if out.topic == topic]


def two_images_one_without_url() -> dict[str, Any]:
    body = payload("wapi_image")
    broken = copy.deepcopy(body["msgContent"]["imageMessage"])
    del broken["url"], broken["directPath"]
    body["msgContent"]["viewOnceMessage"] = {"message": {"imageMessage": broken}}
    return body


def test_one_media_gives_one_download_request_and_one_detected_event_keyed_by_media_id() -> None:
    detection = run(envelope(payload("wapi_image")))

    [request] = on(detection, TOPICS.download_requests)
    [detected] = on(detection, TOPICS.media_events)
    decoded_request = CODEC.decode(request.value, MediaDownloadRequested)
    decoded_detected = CODEC.decode(detected.value, MediaDetected)
    assert decoded_request.media_id == decoded_detected.media_id
    assert request.key == detected.key == decoded_request.media_id.encode()
    assert decoded_request.source.media_key == "stiL9WAcObWvugPMCLxloo6rmTPdq84mHMnQhgKDuIg="
    assert decoded_detected.info.media_type is MediaType.IMAGE
    assert decoded_detected.source_event_id == "evt-1"
    assert len(detection.outputs) == 2


def test_each_media_of_a_message_gets_its_own_request_and_event() -> None:
    body = payload("wapi_image")
    video = payload("wapi_video")["msgContent"]["videoMessage"]
    body["msgContent"]["ephemeralMessage"] = {"message": {"videoMessage": video}}

    detection = run(envelope(body))

    request_keys = [out.key for out in on(detection, TOPICS.download_requests)]
    event_keys = [out.key for out in on(detection, TOPICS.media_events)]
    assert len(set(request_keys)) == 2
    assert request_keys == event_keys
    assert detection.media_types == (MediaType.IMAGE, MediaType.VIDEO)


def test_trace_context_is_copied_into_events_and_output_headers() -> None:
    detection = run(envelope(payload("wapi_image")))

    for out in detection.outputs:
        assert h.to_dict(out.headers)[h.TRACEPARENT] == TRACE
    [detected] = on(detection, TOPICS.media_events)
    assert CODEC.decode(detected.value, MediaDetected).traceparent == TRACE


def test_output_headers_name_the_event_id_and_schema_fingerprint() -> None:
    detection = run(envelope(payload("wapi_image")))

    [request] = on(detection, TOPICS.download_requests)
    headers = h.to_dict(request.headers)
    assert headers[h.EVENT_ID] == CODEC.decode(request.value, MediaDownloadRequested).event_id
    assert headers[h.SCHEMA_FINGERPRINT] == CODEC.fingerprint_of(MediaDownloadRequested).hex()


def test_redelivered_record_yields_the_same_media_and_event_ids() -> None:
    webhook = envelope(payload("wapi_image"))

    first = run(webhook, now=NOW)
    again = run(webhook, now=datetime(2024, 11, 29, tzinfo=UTC))

    assert [o.key for o in first.outputs] == [o.key for o in again.outputs]
    assert [h.to_dict(o.headers)[h.EVENT_ID] for o in first.outputs] == [
        h.to_dict(o.headers)[h.EVENT_ID] for o in again.outputs
    ]


def test_same_webhook_in_two_envelopes_yields_the_same_media_id_and_distinct_event_ids() -> None:
    first = run(envelope(payload("wapi_image"), event_id="evt-1"))
    second = run(envelope(payload("wapi_image"), event_id="evt-2"))

    assert [o.key for o in first.outputs] == [o.key for o in second.outputs]
    first_ids = {h.to_dict(o.headers)[h.EVENT_ID] for o in first.outputs}
    second_ids = {h.to_dict(o.headers)[h.EVENT_ID] for o in second.outputs}
    assert first_ids.isdisjoint(second_ids)


@pytest.mark.parametrize(
    ("fixture", "category"),
    [("wapi_text", Category.TEXT), ("wapi_status", Category.STATUS)],
)
def test_text_and_status_webhooks_produce_nothing(fixture: str, category: Category) -> None:
    detection = run(envelope(payload(fixture)))

    assert detection.outputs == ()
    assert detection.category is category


def test_good_media_is_emitted_and_bad_sibling_dead_lettered_with_the_header_contract() -> None:
    webhook = envelope(two_images_one_without_url())

    detection = run(webhook)

    assert len(on(detection, TOPICS.download_requests)) == 1
    [dead_letter] = on(detection, ROUTER.dlq_topic)
    headers = h.to_dict(dead_letter.headers)
    assert dead_letter.value == in_record(webhook).value
    assert headers[h.DLQ_ORIGINAL_TOPIC] == "webhooks"
    assert headers[h.DLQ_ORIGINAL_PARTITION] == "2"
    assert headers[h.DLQ_ORIGINAL_OFFSET] == "7"
    assert headers[h.DLQ_STAGE] == "detector"
    assert headers[h.DLQ_CONSUMER_GROUP] == "mediaflow-detector"
    assert headers[h.DLQ_ERROR_KIND] == ErrorKind.MISSING_FIELDS.value
    assert "viewOnceMessage.message.imageMessage" in headers[h.DLQ_ERROR_MESSAGE]
    assert detection.problems == (ErrorKind.MISSING_FIELDS,)


def test_bad_media_gets_a_dead_lettered_event_under_its_own_media_id() -> None:
    detection = run(envelope(two_images_one_without_url()))

    events = [CODEC.decode(o.value) for o in on(detection, TOPICS.media_events)]
    [dead] = [e for e in events if isinstance(e, MediaDeadLettered)]
    [detected] = [e for e in events if isinstance(e, MediaDetected)]
    [dead_letter] = on(detection, ROUTER.dlq_topic)
    assert dead.media_id != detected.media_id
    assert h.to_dict(dead_letter.headers)[h.DLQ_MEDIA_ID] == dead.media_id
    assert dead.error_kind == ErrorKind.MISSING_FIELDS.value
    assert dead.stage == "detector"


def test_body_that_is_not_json_raises_invalid_payload() -> None:
    with pytest.raises(InvalidPayload) as raised:
        run(envelope(b"<html>not json</html>"))

    assert raised.value.kind is ErrorKind.INVALID_PAYLOAD


def test_value_that_is_not_an_envelope_raises_undecodable() -> None:
    record = in_record(envelope(payload("wapi_image")))
    garbage = dataclasses.replace(record, value=b"{}")

    with pytest.raises(UndecodableRecord):
        read_webhook(garbage, CODEC)


def images_in_wrappers(count: int) -> dict[str, Any]:
    """A message whose content holds ``count`` images, each in a wrapper of its own."""
    body = payload("wapi_image")
    image = body["msgContent"]["imageMessage"]
    content: dict[str, Any] = {}
    for _ in range(count):
        content = {"imageMessage": image, "ephemeralMessage": {"message": content}}
    body["msgContent"] = content
    return body


def test_a_webhook_with_as_many_media_as_allowed_gives_one_request_each() -> None:
    detection = run(envelope(images_in_wrappers(3)), max_media=3)
    assert len(on(detection, TOPICS.download_requests)) == 3


def test_a_webhook_with_more_media_than_allowed_is_refused_whole() -> None:
    with pytest.raises(InvalidPayload, match="4 media items") as raised:
        run(envelope(images_in_wrappers(4)), max_media=3)
    assert raised.value.kind is ErrorKind.TOO_MANY_MEDIA
    assert "MEDIAFLOW_MAX_MEDIA_PER_WEBHOOK" in raised.value.message


def test_a_body_of_nested_empty_media_items_is_refused_whole_not_dead_lettered_per_item() -> None:
    with pytest.raises(InvalidPayload) as raised:
        run(envelope(fanout_body(50_000)))
    assert raised.value.kind is ErrorKind.TOO_MANY_MEDIA


def test_media_and_problems_together_count_against_the_limit() -> None:
    body = two_images_one_without_url()
    assert len(run(envelope(body), max_media=2).outputs) == 4
    with pytest.raises(InvalidPayload):
        run(envelope(body), max_media=1)
