"""Avro envelopes under attack: random, truncated, bit-flipped bytes raise UndecodableRecord."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from mediaflow.codec import MAGIC, AvroCodec
from mediaflow.errors import UndecodableRecord
from mediaflow.events import MediaStored, WebhookReceived

CODEC = AvroCodec()
VALID = [
    CODEC.encode(
        WebhookReceived(
            event_id="e1",
            provider="wapi",
            client_id="1",
            instance_id="I",
            message_id="M",
            event_type="message",
            received_at=datetime(2025, 1, 2, tzinfo=UTC),
            headers={"content-type": "application/json"},
            body=b'{"msgContent": {}}',
        )
    ),
    CODEC.encode(
        MediaStored(
            event_id="e2",
            media_id="m",
            occurred_at=datetime(2025, 1, 2, tzinfo=UTC),
            stage="downloader",
            bucket="b",
            key="k",
            size=3,
            sha256="ab" * 32,
            content_type="image/jpeg",
            fetch_path="wapi",
            duration_ms=1,
            attempt=1,
        )
    ),
]


def decodes_or_refuses(data: bytes) -> None:
    """Decoding either works or raises UndecodableRecord; nothing else escapes."""
    try:
        CODEC.decode(data)
    except UndecodableRecord as exc:
        assert str(exc)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_undecodable_records(data: bytes) -> None:
    decodes_or_refuses(data)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_behind_a_known_fingerprint_are_undecodable_records(tail: bytes) -> None:
    decodes_or_refuses(VALID[0][:10] + tail)
    decodes_or_refuses(MAGIC + tail)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VALID), st.data())
def test_truncated_records_are_undecodable_records(record: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(record) - 1))
    decodes_or_refuses(record[:cut])


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(VALID), st.data())
def test_bit_flipped_records_decode_or_are_undecodable_records(
    record: bytes, data: st.DataObject
) -> None:
    flips = data.draw(st.lists(st.integers(0, len(record) * 8 - 1), min_size=1, max_size=4))
    mutated = bytearray(record)
    for bit in flips:
        mutated[bit // 8] ^= 1 << (bit % 8)
    decodes_or_refuses(bytes(mutated))
