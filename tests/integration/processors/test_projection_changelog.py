"""The projection publishes each media's current state to the compacted media.state topic."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.events import MediaDetected
from mediaflow.kafka.stage_runner import run_stage
from mediaflow.kafka.topics import TopicLayout
from mediaflow.processors.projection import consumer as projection
from tests.support.kafka import produce, read_all
from tests.support.projection import detected, failed, stored

pytestmark = pytest.mark.integration


def publish(settings: Settings, layout: TopicLayout, events: list) -> None:
    codec = AvroCodec()
    produce(settings, layout.media_events, [(e.media_id, codec.encode(e)) for e in events])


def latest_states(settings: Settings, layout: TopicLayout) -> dict[str, dict]:
    """Read media.state as a table: the last record per key wins (what compaction keeps)."""
    records = sorted(read_all(settings, layout.media_state), key=lambda m: m.offset())
    return {m.key().decode(): json.loads(m.value()) for m in records}


def test_the_latest_state_of_a_media_on_the_changelog_follows_the_projection_to_stored(
    settings: Settings, layout: TopicLayout
) -> None:
    publish(settings, layout, [detected("m1"), detected("m2")])
    assert run_stage(projection.STAGE, settings, idle_exit_s=1.5) == 0
    assert {k: v["status"] for k, v in latest_states(settings, layout).items()} == {
        "m1": "detected",
        "m2": "detected",
    }

    publish(settings, layout, [failed("m1", 3), stored("m1", 9)])
    assert run_stage(projection.STAGE, settings, idle_exit_s=1.5) == 0
    states = latest_states(settings, layout)
    assert (states["m1"]["status"], states["m1"]["attempts"]) == ("stored", 1)
    assert states["m1"]["sha256"] and states["m1"]["object_key"]
    assert states["m2"]["status"] == "detected"


def test_a_plain_consumer_rebuilds_which_media_each_message_has_from_the_changelog(
    settings: Settings, layout: TopicLayout
) -> None:
    """What the README promises a platform reading Kafka directly, with no mediaflow code."""

    def of(media_id: str, message: str) -> MediaDetected:
        event = detected(media_id, instance="i7")
        return dataclasses.replace(event, info=dataclasses.replace(event.info, message_id=message))

    publish(settings, layout, [of("a1", "wamid.A"), of("a2", "wamid.A"), of("b1", "wamid.B")])
    publish(settings, layout, [stored("a1", 5)])
    assert run_stage(projection.STAGE, settings, idle_exit_s=1.5) == 0

    by_message: dict[tuple[str, str], dict[str, str]] = {}
    for message in sorted(read_all(settings, layout.media_state), key=lambda m: m.offset()):
        row = json.loads(message.value())  # key: the media id, value: GET /media/{id}
        assert message.key().decode() == row["media_id"]
        media = by_message.setdefault((row["instance_id"], row["message_id"]), {})
        media[row["media_id"]] = row["status"]
    assert by_message == {
        ("i7", "wamid.A"): {"a1": "stored", "a2": "detected"},
        ("i7", "wamid.B"): {"b1": "detected"},
    }
