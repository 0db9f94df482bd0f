"""Dead letters read back for the operator: decoded, filtered, summarised."""

from datetime import timedelta

from mediaflow.errors import ErrorKind
from mediaflow.kafka import headers as h
from mediaflow.ops import dlq
from tests.support.dead_letters import CODEC, LAYOUT, NOW, dead_letter, request


def test_a_dead_letter_is_decoded_with_its_headers_and_payload_fields():
    view = dead_letter(CODEC.encode(request()))
    assert (view.stage, view.error_kind, view.client_id, view.media_type, view.media_id) == (
        "downloader",
        "expired",
        "2",
        "image",
        "m-1",
    )
    assert view.original_topic == LAYOUT.download_requests and view.original_offset == 40


def test_show_never_prints_the_media_key_or_the_signed_url():
    detail = dead_letter(CODEC.encode(request())).detail()
    text = str(detail)
    assert "c2VjcmV0" not in text and "sig=1" not in text


def test_an_undecodable_value_is_shown_as_length_and_hex_prefix():
    view = dead_letter(b"\x00garbage")
    detail = view.detail()
    assert (
        view.decode_error
        and detail["value_bytes"] == 8
        and detail["value_hex_prefix"] == "00676172626167" + "65"
    )


def test_filters_select_by_kind_client_type_and_time():
    view = dead_letter(CODEC.encode(request()))
    assert dlq.DlqFilter(kind="expired", client="2", media_type="image").matches(view)
    assert not dlq.DlqFilter(kind="mac_mismatch").matches(view)
    assert not dlq.DlqFilter(since=NOW + timedelta(seconds=1)).matches(view)
    assert dlq.DlqFilter(since=NOW, until=NOW + timedelta(seconds=1)).matches(view)
    assert dlq.DlqFilter(ids=frozenset({"0:0"})).matches(view)


def test_stats_group_by_kind_and_stage_with_first_last_and_example():
    views = [
        dead_letter(CODEC.encode(request()), offset=0, at=NOW),
        dead_letter(CODEC.encode(request()), offset=1, at=NOW + timedelta(minutes=5)),
        dead_letter(b"x", kind=ErrorKind.UNDECODABLE, offset=2),
    ]
    rows = dlq.stats(views)
    assert [(r["kind"], r["count"]) for r in rows] == [("expired", 2), ("undecodable", 1)]
    assert rows[0]["first"] == NOW and rows[0]["last"] == NOW + timedelta(minutes=5)
    assert rows[0]["example"] == "0:1"


def test_parse_time_accepts_iso_naive_as_utc_and_epoch_millis():
    assert dlq.parse_time("2026-05-04T12:00:00") == NOW
    assert dlq.parse_time("2026-05-04T12:00:00Z") == NOW
    assert dlq.parse_time(str(h.millis(NOW))) == NOW
