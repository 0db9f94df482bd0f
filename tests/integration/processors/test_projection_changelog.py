"""The projection publishes each media's current state to the compacted media.state topic."""

from __future__ import annotations

import json

import pytest

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
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
