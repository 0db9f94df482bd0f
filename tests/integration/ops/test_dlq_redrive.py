"""A redrive round trip on the real broker: dead letter -> redrive -> first tier -> loop marker."""

import json
from datetime import UTC, datetime

import pytest

from mediaflow.cli import build_parser
from mediaflow.codec import AvroCodec
from mediaflow.errors import ErrorKind, MediaExpired
from mediaflow.events import (
    MediaDownloadRequested,
    MediaInfo,
    MediaRedriven,
    MediaSource,
    MediaType,
)
from mediaflow.kafka import headers as h
from mediaflow.kafka.records import InRecord
from mediaflow.kafka.retry import DeadLetter
from mediaflow.kafka.routing import FailureRouter
from tests.support.kafka import produce, read_all

pytestmark = pytest.mark.integration
CODEC = AvroCodec()
NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def request(media_id: str) -> bytes:
    info = MediaInfo(
        provider="wapi",
        client_id="2",
        instance_id="inst-1",
        message_id=media_id,
        chat_id="chat",
        media_type=MediaType.AUDIO,
    )
    return CODEC.encode(
        MediaDownloadRequested(
            event_id="e",
            media_id=media_id,
            occurred_at=NOW,
            stage="detector",
            source_event_id="w",
            info=info,
            source=MediaSource(direct_path="/d"),
        )
    )


def dead_letter_like_the_router(settings, layout, media_id: str, headers=()):
    """Write a dead letter exactly as a stage's FailureRouter does."""
    record = InRecord(
        topic=layout.download_requests,
        partition=2,
        offset=7,
        key=media_id.encode(),
        value=request(media_id),
        headers=list(headers),
        timestamp=NOW,
    )
    router = FailureRouter("downloader", "mediaflow-downloader", layout.dead_letters)
    out = router.route(
        record, DeadLetter(ErrorKind.EXPIRED, "410", 1, MediaExpired("410")), NOW, media_id
    )
    produce(settings, out.topic, [(out.key, out.value, out.headers)])


def run(settings, *argv):
    args = build_parser().parse_args(list(argv))
    return args.handler(args, settings)


def test_redrive_lands_on_the_first_tier_with_provenance_and_a_redriven_event(
    settings, layout, capsys
):
    dead_letter_like_the_router(settings, layout, "m-1")
    assert run(settings, "dlq", "redrive", "--kind", "expired", "--operator", "ana", "--json") == 0
    (sent,) = read_all(settings, layout.retry_tiers[0].topic)
    headers = h.to_dict(sent.headers())
    assert sent.key() == b"m-1" and sent.value() == request("m-1")
    assert headers[h.REDRIVE_OPERATOR] == "ana" and headers[h.ATTEMPT] == "1"
    assert headers[h.REDRIVE_ORIGINAL_TOPIC] == layout.download_requests
    assert (headers[h.REDRIVE_ORIGINAL_PARTITION], headers[h.REDRIVE_ORIGINAL_OFFSET]) == ("2", "7")
    events = [CODEC.decode(m.value()) for m in read_all(settings, layout.media_events)]
    assert [type(e) for e in events] == [MediaRedriven]
    assert events[0].redrive_id == headers[h.REDRIVE_ID] and events[0].media_id == "m-1"


def test_dry_run_sends_nothing(settings, layout):
    dead_letter_like_the_router(settings, layout, "m-1")
    assert run(settings, "dlq", "redrive", "--all", "--dry-run") == 0
    assert read_all(settings, layout.retry_tiers[0].topic, timeout=3) == []


def test_a_redriven_record_that_fails_again_is_listed_apart_and_not_redriven_twice(
    settings, layout, capsys
):
    dead_letter_like_the_router(settings, layout, "m-1")
    run(settings, "dlq", "redrive", "--all")
    (again,) = read_all(settings, layout.retry_tiers[0].topic)
    # the downloader fails it again: the router keeps the redrive headers
    dead_letter_like_the_router(settings, layout, "m-1", headers=again.headers())
    capsys.readouterr()
    run(settings, "dlq", "list")
    listing = capsys.readouterr().out
    assert "redriven before and failed again (1" in listing
    run(settings, "dlq", "list", "--json")
    (looped,) = json.loads(capsys.readouterr().out)["redriven_and_failed_again"]
    assert run(settings, "dlq", "redrive", "--id", looped["id"]) == 1
    assert len(read_all(settings, layout.retry_tiers[0].topic)) == 1
    assert run(settings, "dlq", "redrive", "--id", looped["id"], "--force") == 0
    assert len(read_all(settings, layout.retry_tiers[0].topic)) == 2


def test_dismissed_dead_letters_are_hidden_from_list_once_the_projection_applied_it(
    settings, layout, capsys
):
    from mediaflow.events import MediaDismissed
    from mediaflow.storage.projection import LogRecord, open_store

    dead_letter_like_the_router(settings, layout, "m-1")
    assert run(settings, "dlq", "dismiss", "--kind", "expired", "--reason", "spam") == 0
    events = [CODEC.decode(m.value()) for m in read_all(settings, layout.media_events)]
    assert [(type(e), e.reason) for e in events] == [(MediaDismissed, "spam")]
    store = open_store(settings.projection_db_url)
    store.apply_batch([LogRecord(layout.media_events, 0, 0, events[0])])
    store.close()
    capsys.readouterr()
    run(settings, "dlq", "list", "--json")
    assert json.loads(capsys.readouterr().out)["dead_letters"] == []
    run(settings, "dlq", "list", "--json", "--include-dismissed")
    assert len(json.loads(capsys.readouterr().out)["dead_letters"]) == 1


def too_large_dead_letter(settings, layout, media_id: str, *, original_offset: int | None):
    """A dead letter whose value the router left out, pointing at its original on its topic.

    With ``original_offset=None`` the original really is on the topic (produced here);
    otherwise the dead letter points at an offset that holds nothing (retention took it).
    """
    value = request(media_id) + b"\0" * 4000  # too large for the 2 kB dead-letter limit below
    if original_offset is None:
        produce(settings, layout.download_requests, [(media_id.encode(), value)])
        (original,) = read_all(settings, layout.download_requests)
        partition, offset = original.partition(), original.offset()
    else:
        partition, offset = 0, original_offset
    record = InRecord(
        topic=layout.download_requests,
        partition=partition,
        offset=offset,
        key=media_id.encode(),
        value=value,
        headers=[],
        timestamp=NOW,
    )
    router = FailureRouter(
        "downloader", "mediaflow-downloader", layout.dead_letters, max_record_bytes=2000
    )
    out = router.route(
        record, DeadLetter(ErrorKind.EXPIRED, "410", 1, MediaExpired("410")), NOW, media_id
    )
    assert out.value is None and h.DLQ_VALUE_OMITTED in h.to_dict(out.headers)
    produce(settings, out.topic, [(out.key, out.value, out.headers)])
    return value


def test_a_dead_letter_whose_value_was_left_out_is_redriven_with_its_original(settings, layout):
    original = too_large_dead_letter(settings, layout, "m-big", original_offset=None)
    assert run(settings, "dlq", "redrive", "--all") == 0
    (sent,) = read_all(settings, layout.retry_tiers[0].topic)
    assert sent.key() == b"m-big"
    assert sent.value() == original  # not an empty record


def test_a_dead_letter_whose_original_is_gone_is_refused_not_sent_empty(settings, layout, capsys):
    too_large_dead_letter(settings, layout, "m-gone", original_offset=500)
    capsys.readouterr()
    assert run(settings, "dlq", "redrive", "--all") == 1
    assert read_all(settings, layout.retry_tiers[0].topic, timeout=3) == []
    out = capsys.readouterr().out
    assert "m-gone" in out
    assert f"no longer on {layout.download_requests}" in out


def apply_events(settings, layout) -> None:
    """Apply the event log to the projection, as the projection stage would."""
    from mediaflow.storage.projection import LogRecord, open_store

    store = open_store(settings.projection_db_url)
    messages = read_all(settings, layout.media_events)
    store.apply_batch(
        [
            LogRecord(layout.media_events, m.partition(), m.offset(), CODEC.decode(m.value()))
            for m in messages
        ]
    )
    store.close()


def test_list_shows_a_redriven_letter_as_redriven_and_filters_by_state(settings, layout, capsys):
    dead_letter_like_the_router(settings, layout, "m-1")
    dead_letter_like_the_router(settings, layout, "m-2")
    capsys.readouterr()
    run(settings, "dlq", "list", "--json")
    before = json.loads(capsys.readouterr().out)["dead_letters"]
    assert {r["state"] for r in before} == {"open"}
    redriven_id = before[0]["id"]
    run(settings, "dlq", "redrive", "--id", redriven_id)
    apply_events(settings, layout)
    capsys.readouterr()
    run(settings, "dlq", "list", "--json")
    states = {r["id"]: r["state"] for r in json.loads(capsys.readouterr().out)["dead_letters"]}
    assert states[redriven_id] == "redriven" and list(states.values()).count("open") == 1
    run(settings, "dlq", "list", "--json", "--state", "open")
    (still_open,) = json.loads(capsys.readouterr().out)["dead_letters"]
    assert still_open["id"] != redriven_id


def test_list_limit_shows_the_newest_and_says_how_many_match(settings, layout, capsys):
    for i in range(3):
        dead_letter_like_the_router(settings, layout, f"m-{i}")
    capsys.readouterr()
    run(settings, "dlq", "list", "--limit", "2")
    assert "showing the 2 newest of 3 (--limit)" in capsys.readouterr().out
    run(settings, "dlq", "list", "--json", "--limit", "1")
    listing = json.loads(capsys.readouterr().out)
    assert (len(listing["dead_letters"]), listing["matching"]) == (1, 3)
