"""The projection's pure state machine: events in -> expected row."""

from __future__ import annotations

import itertools
import random

import pytest

from mediaflow.codec import AvroCodec
from mediaflow.events import MediaInfo
from mediaflow.media_state import (
    COLUMNS,
    MediaRow,
    MediaStatus,
    State,
    apply,
    fold,
    millis,
    row_from,
)
from tests.support.projection import (
    at,
    dead_lettered,
    detected,
    dismissed,
    failed,
    redriven,
    stored,
)


def run(events: list, row: MediaRow | None = None) -> MediaRow:
    for event in events:
        row = apply(row, event)
    assert row is not None
    return row


def test_detected_creates_a_detected_row_with_the_media_info() -> None:
    row = run([detected("m1", client="acme", instance="i9")])
    assert (row.status, row.client_id, row.instance_id, row.media_type) == (
        "detected",
        "acme",
        "i9",
        "image",
    )
    assert row.detected_at == row.created_at == millis(at(0))


def test_retryable_failure_makes_the_media_retrying_with_its_due_time() -> None:
    row = run([detected("m1"), failed("m1", 5, attempt=1)])
    assert row.status == MediaStatus.RETRYING
    assert row.attempts == 1
    assert row.last_error_kind == "timeout"
    assert row.next_retry_at == millis(at(15))


def test_stored_records_the_object_and_clears_the_retry_time() -> None:
    row = run([detected("m1"), failed("m1", 5), stored("m1", 20, attempt=2)])
    assert row.status == MediaStatus.STORED
    assert (row.size, row.content_type, row.attempts) == (1234, "image/jpeg", 2)
    assert row.next_retry_at is None
    assert row.stored_at == millis(at(20))


def test_a_redelivery_answered_from_the_bucket_keeps_the_first_stored_time() -> None:
    first, redelivered = stored("m1", 20), stored("m1", 65)
    row = run([detected("m1"), first, redelivered])
    assert row.status == MediaStatus.STORED
    assert row.stored_at == millis(at(20))
    assert run([redelivered, first]).stored_at == millis(at(20))


def test_a_late_download_failure_never_overwrites_stored() -> None:
    row = run([detected("m1"), stored("m1", 20), failed("m1", 30, attempt=3)])
    assert row.status == MediaStatus.STORED
    assert row.next_retry_at is None


def test_a_dismissal_after_stored_is_recorded_but_keeps_stored() -> None:
    row = run([detected("m1"), stored("m1", 20), dismissed("m1", 40)])
    assert row.status == MediaStatus.STORED
    assert row.dismissed_at == millis(at(40))


def test_dead_letter_then_redrive_then_dismiss_follow_each_other() -> None:
    events = [detected("m1"), dead_lettered("m1", 10)]
    assert run(events).status == MediaStatus.DEAD_LETTERED
    events.append(redriven("m1", 20))
    assert run(events).status == MediaStatus.REDRIVEN
    events.append(dismissed("m1", 30))
    assert run(events).status == MediaStatus.DISMISSED


def test_non_retryable_failure_records_the_error_without_changing_status() -> None:
    row = run([detected("m1"), failed("m1", 5, retryable=False)])
    assert row.status == MediaStatus.DETECTED
    assert row.last_error_message == "attempt 1 timed out"


def test_stored_before_detected_creates_the_row_and_detected_only_fills_info() -> None:
    row = run([stored("m1", 20), detected("m1", 0, client="acme")])
    assert row.status == MediaStatus.STORED
    assert row.client_id == "acme"
    assert row.created_at == millis(at(0))


def test_applying_the_same_event_twice_is_a_no_op() -> None:
    events = [detected("m1"), failed("m1", 5), dead_lettered("m1", 9)]
    once = run(events)
    assert run([events[1], events[0], events[2], events[1]], once) == once


def test_every_arrival_order_gives_the_same_row() -> None:
    events = [
        detected("m1"),
        failed("m1", 5, 1),
        failed("m1", 15, 2),
        dead_lettered("m1", 30),
        redriven("m1", 40),
        failed("m1", 50, 1),
        stored("m1", 60),
    ]
    expected = run(events)
    orders = list(itertools.permutations(events))
    for order in random.Random(7).sample(orders, 200):
        assert run(list(order)) == expected


def test_folding_the_plain_records_a_rebuild_reads_gives_the_live_rows() -> None:
    """A rebuild folds records decoded without dataclasses; the live projection, events."""
    codec = AvroCodec()
    events = [
        stored("m1", 20, attempt=2),
        detected("m1"),
        failed("m1", 5),
        detected("m2", 1),
        failed("m2", 2, retryable=False),
        dead_lettered("m2", 3, attempt=2),
        redriven("m2", 4),
        dismissed("m2", 6),
        dead_lettered("m3", 1),
        failed("m3", 0),
        stored("m3", 9),
        stored("m3", 8),
        dismissed("m3", 12),
    ]
    live: dict[str, MediaRow] = {}
    states: dict[str, State] = {}
    for event in events:
        live[event.media_id] = apply(live.get(event.media_id), event)
        event_type, record = codec.decode_plain(codec.encode(event))
        states[event.media_id] = fold(states.get(event.media_id), event_type, record)
    assert {media_id: row_from(state.items()) for media_id, state in states.items()} == live
    assert all(list(state) == list(COLUMNS) for state in states.values())


def test_folding_anything_but_a_media_event_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="not a media event: MediaInfo"):
        fold(None, MediaInfo, {"occurred_at": 0, "media_id": "m1"})
