"""The detector's stage handler: what the worker loop gets back, and what is counted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from mediaflow.codec import AvroCodec
from mediaflow.errors import UndecodableRecord
from mediaflow.events import WebhookReceived
from mediaflow.kafka.records import InRecord
from mediaflow.kafka.routing import FailureRouter
from mediaflow.processors.detector.stage import DetectorStage
from mediaflow.processors.detector.transform import OutputTopics

PAYLOADS = Path(__file__).resolve().parents[2] / "fixtures" / "payloads"
NOW = datetime(2024, 11, 28, 12, 0, tzinfo=UTC)
CODEC = AvroCodec()


def stage() -> DetectorStage:
    return DetectorStage(
        codec=CODEC,
        topics=OutputTopics("requests", "events"),
        router=FailureRouter(stage="detector", group_id="g", dlq_topic="dlq"),
        max_media=10,
        clock=lambda: NOW,
    )


def record(fixture: str | None, value: bytes | None = None) -> InRecord:
    if fixture is not None:
        value = CODEC.encode(
            WebhookReceived(
                event_id="evt-1",
                provider="wapi",
                client_id="client-a",
                instance_id="3B6XIW-ZTS923-GEAY6V",
                event_type="webhookReceived",
                received_at=NOW,
                body=(PAYLOADS / f"{fixture}.json").read_bytes(),
            )
        )
    return InRecord("webhooks", 0, 0, None, value, [], NOW)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_text_message_produces_nothing_and_is_counted_as_text() -> None:
    before = sample("mediaflow_detector_webhooks_total", provider="wapi", category="text")

    outputs = await stage().handle(record("wapi_text"))

    assert list(outputs) == []
    after = sample("mediaflow_detector_webhooks_total", provider="wapi", category="text")
    assert after == before + 1


async def test_media_found_are_counted_by_type() -> None:
    before = sample("mediaflow_media_detected_total", media_type="image")

    outputs = await stage().handle(record("wapi_image"))

    assert len(outputs) == 2
    assert sample("mediaflow_media_detected_total", media_type="image") == before + 1


async def test_undecodable_value_is_raised_for_the_worker_to_dead_letter() -> None:
    with pytest.raises(UndecodableRecord):
        await stage().handle(record(None, b"\x00garbage"))


def test_whole_record_failures_name_no_media() -> None:
    assert stage().media_id_of(record("wapi_image")) is None
