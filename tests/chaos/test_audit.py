"""The chaos audit tells an intended outcome from a loss, a repeat or a wrong dead letter (pure)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from mediaflow.events import MediaDeadLettered, MediaDetected, MediaStored
from mediaflow.media_state import MediaRow
from tests.chaos.audit import (
    Bucket,
    DeadLetterRecord,
    FanOut,
    Intended,
    render,
    tally,
)

NOW = datetime(2026, 12, 5, tzinfo=UTC)
BYTES_SHA = hashlib.sha256(b"bytes").hexdigest()
FAN_BODY = b'{"messageId": "3EB0FAN"}'
FANOUT = FanOut("3EB0FAN", FAN_BODY, frozenset({"f1", "f2"}))


def stored(media_id: str) -> MediaStored:
    return MediaStored(
        event_id=f"s-{media_id}",
        media_id=media_id,
        occurred_at=NOW,
        stage="downloader",
        bucket="b",
        key=f"k/{media_id}",
        size=5,
        sha256=BYTES_SHA,
        content_type="image/jpeg",
        fetch_path="direct",
        duration_ms=1,
        attempt=1,
    )


def dead(media_id: str, kind: str) -> MediaDeadLettered:
    return MediaDeadLettered(
        event_id=f"d-{media_id}",
        media_id=media_id,
        occurred_at=NOW,
        stage="downloader",
        error_kind=kind,
        error_message="why",
        attempt=4,
    )


def row(media_id: str, status: str, kind: str | None = None) -> MediaRow:
    return MediaRow(
        media_id=media_id,
        status=status,
        status_at=0,
        status_event_id="e",
        created_at=0,
        updated_at=0,
        day="2026-12-05",
        last_error_kind=kind,
        object_key=f"k/{media_id}" if status == "stored" else None,
    )


def audit(events, rows, intended, dead_letters=()):  # type: ignore[no-untyped-def]
    objects = {e.key: BYTES_SHA for e in events if isinstance(e, MediaStored)}
    return tally(
        intended,
        events,
        {r.media_id: r for r in rows},
        Bucket(objects, ()),
        dead_letters=dead_letters,
    )


def test_a_media_meant_to_be_stored_that_is_dead_lettered_fails_the_run_under_its_kind():
    result = audit(
        [stored("m1"), dead("m2", "retries_exhausted")],
        [row("m1", "stored"), row("m2", "dead_lettered", "retries_exhausted")],
        Intended(store=frozenset({"m1", "m2"})),
    )

    assert (result.stored, result.lost) == (1, {})
    assert result.unintended_by_kind == {"retries_exhausted": 1}
    assert "meant to be stored" in result.unintended["m2"]
    assert not result.ok


def test_a_media_built_to_fail_passes_only_as_a_dead_letter_of_a_permanent_kind():
    result = audit(
        [dead("bad1", "invalid_payload"), dead("bad2", "internal"), stored("bad3")],
        [
            row("bad1", "dead_lettered", "invalid_payload"),
            row("bad2", "dead_lettered", "internal"),
            row("bad3", "stored"),
        ],
        Intended(store=frozenset(), dead=frozenset({"bad1", "bad2", "bad3"})),
    )

    assert result.dead_by_reason == {"invalid_payload": 1}
    assert sorted(result.unintended) == ["bad2", "bad3"]
    assert not result.ok


def test_a_fanout_webhook_refused_once_is_the_intended_outcome_and_its_media_are_not_lost():
    result = audit(
        [stored("m1")],
        [row("m1", "stored")],
        Intended(store=frozenset({"m1"}), fanouts=(FANOUT,)),
        [DeadLetterRecord("too_many_media", FAN_BODY)],
    )

    assert result.ok
    assert (result.fanouts, result.fanouts_dead_lettered) == (1, 1)
    assert result.dlq_by_kind == {"too_many_media": 1}
    assert "f1" not in result.expected


def test_a_fanout_webhook_without_its_dead_letter_is_lost_and_one_with_two_is_duplicated():
    other = FanOut("3EB0TWO", b"two", frozenset({"g1"}))
    result = audit(
        [],
        [],
        Intended(store=frozenset(), fanouts=(FANOUT, other)),
        [DeadLetterRecord("too_many_media", b"two"), DeadLetterRecord("too_many_media", b"two")],
    )

    assert list(result.lost) == ["fan-out webhook 3EB0FAN"]
    assert list(result.duplicated) == ["fan-out webhook 3EB0TWO"]
    assert result.fanouts_dead_lettered == 0


def test_a_fanout_whose_media_were_detected_anyway_fails_the_run():
    detected = MediaDetected(
        event_id="e",
        media_id="f1",
        occurred_at=NOW,
        stage="detector",
        source_event_id="w",
        info=None,  # type: ignore[arg-type]  # the audit reads only the media id
    )
    result = audit(
        [detected],
        [],
        Intended(store=frozenset(), fanouts=(FANOUT,)),
        [DeadLetterRecord("too_many_media", FAN_BODY)],
    )

    assert "1 of its 2 media were detected" in result.unintended["fan-out webhook 3EB0FAN"]
    assert not result.ok


def test_a_too_many_media_dead_letter_of_an_ordinary_webhook_fails_the_run():
    result = audit(
        [],
        [],
        Intended(store=frozenset()),
        [DeadLetterRecord("too_many_media", b'{"messageId": "3EB0ORDINARY"}')],
    )

    assert len(result.unintended) == 1
    assert not result.ok


def test_the_table_names_unintended_dead_letters_and_fanouts():
    result = audit(
        [dead("m2", "retries_exhausted")],
        [row("m2", "dead_lettered", "retries_exhausted")],
        Intended(store=frozenset({"m2"}), fanouts=(FANOUT,)),
        [DeadLetterRecord("retries_exhausted"), DeadLetterRecord("too_many_media", FAN_BODY)],
    )

    table = render(result, accepted_webhooks=2)
    assert "  dead-lettered instead                            1" in table
    assert "    retries_exhausted                              1" in table
    assert "  one too_many_media dead letter each              1" in table
    assert "UNINTENDED: m2: dead-lettered (retries_exhausted)" in table
