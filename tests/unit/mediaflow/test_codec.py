import dataclasses
import io
import json
from datetime import UTC, datetime
from typing import Any

import avro.io
import avro.schema
import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediaflow.codec import MAGIC, AvroCodec, generate_writer, load_schema
from mediaflow.errors import UndecodableRecord
from mediaflow.events import (
    RECORD_TYPES,
    MediaDeadLettered,
    MediaDetected,
    MediaDismissed,
    MediaDownloadFailed,
    MediaDownloadRequested,
    MediaInfo,
    MediaRedriven,
    MediaSource,
    MediaStored,
    MediaType,
    WebhookReceived,
)
from mediaflow.media_state import plain_record
from mediaflow.schemas import SCHEMA_DIR

NOW = datetime(2026, 11, 29, 12, 0, 0, 123000, tzinfo=UTC)
COMMON = {
    "event_id": "e-1",
    "media_id": "m-1",
    "occurred_at": NOW,
    "stage": "downloader",
    "traceparent": None,
}
INFO = MediaInfo(
    provider="wapi",
    client_id="2",
    instance_id="3B6XIW-ZTS923-GEAY6V",
    message_id="3EB0C767D26A1B2C4F8E",
    chat_id="5511988887777",
    sender_name="Maria",
    media_type=MediaType.AUDIO,
    media_variant="ptt",
    declared_length=48213,
    message_timestamp=NOW,
)

SAMPLES = [
    WebhookReceived(
        event_id="e-0",
        provider="wapi",
        client_id="2",
        instance_id="i",
        event_type="webhookReceived",
        received_at=NOW,
        headers={"user-agent": "x"},
        body=b'{"a": "\xc3\xa9"}',
    ),
    MediaDownloadRequested(
        **COMMON, source_event_id="e-0", info=INFO, source=MediaSource(media_key="k", url="u")
    ),
    MediaDetected(**COMMON, source_event_id="e-0", info=INFO),
    MediaDownloadFailed(
        **COMMON,
        attempt=1,
        error_kind="server_error",
        error_message="500",
        retryable=True,
        next_due_at=NOW,
    ),
    MediaStored(
        **COMMON,
        bucket="b",
        key="k",
        size=1,
        sha256="ab",
        content_type="audio/ogg",
        fetch_path="direct",
        duration_ms=5,
        attempt=1,
    ),
    MediaDeadLettered(**COMMON, error_kind="expired", error_message="410", attempt=2),
    MediaRedriven(**COMMON, redrive_id="r", operator="ana", target_topic="t"),
    MediaDismissed(**COMMON, operator="ana", reason="spam"),
]


def test_every_record_type_has_a_sample():
    assert {type(s) for s in SAMPLES} == set(RECORD_TYPES)


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_records_round_trip(record):
    codec = AvroCodec()
    assert codec.decode(codec.encode(record)) == record


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_a_plain_decode_reads_the_record_as_its_dataclass_holds_it(record):
    """What a rebuild folds (no dataclass) is what the live projection folds (from one)."""
    codec = AvroCodec()
    assert codec.decode_plain(codec.encode(record)) == (type(record), plain_record(record))


def test_a_plain_decode_reads_timestamps_as_epoch_milliseconds():
    record_type, fields = AvroCodec().decode_plain(AvroCodec().encode(SAMPLES[3]))
    assert record_type is MediaDownloadFailed
    assert fields["occurred_at"] == fields["next_due_at"] == 1_795_953_600_123


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_apache_avro_reads_our_bytes_with_the_avsc(record):
    """Any Avro implementation holding the .avsc decodes the single-object encoding."""
    codec = AvroCodec()
    data = codec.encode(record)
    assert data[:2] == MAGIC
    expanded = load_schema(type(record).__name__)
    schema = avro.schema.parse(json.dumps(expanded))
    # Apache avro (Python) keeps {"type":"long"} for logical types in its canonical
    # form, against the spec's [PRIMITIVES] rule; Java and fastavro reduce it to "long".
    canonical = schema.canonical_form.replace('{"type":"long"}', '"long"')
    assert data[2:10] == crc64_avro(canonical.encode()).to_bytes(8, "little")
    decoded = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(data[10:])))
    assert decoded["event_id"] == record.event_id


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO exactly as the Avro specification writes it (independent of our codec)."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1) & 0xFFFFFFFFFFFFFFFF)
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def test_crc64_reference_matches_the_avro_test_vector():
    """Avro's share/test/data/schema-tests.txt: "null" -> 7195948357588979594."""
    assert crc64_avro(b'"null"') == 7195948357588979594


def test_fingerprint_is_little_endian_crc64_of_canonical_form():
    schema = fastavro.parse_schema(load_schema("MediaStored"))
    canonical = fastavro.schema.to_parsing_canonical_form(schema).encode()
    assert AvroCodec().fingerprint_of(MediaStored) == crc64_avro(canonical).to_bytes(8, "little")


def test_old_records_are_read_with_the_new_schema():
    """Schemas evolve backward-compatibly: a record written before a field existed still decodes."""
    codec = AvroCodec()
    old = load_schema("MediaDeadLettered")
    old["fields"] = [f for f in old["fields"] if f["name"] != "traceparent"]
    fingerprint = codec.register_writer(old)
    body = io.BytesIO()
    fastavro.schemaless_writer(
        body,
        fastavro.parse_schema(old),
        {
            "event_id": "e",
            "media_id": "m",
            "occurred_at": NOW,
            "stage": "downloader",
            "error_kind": "expired",
            "error_message": "gone",
            "attempt": 3,
        },
    )
    decoded = codec.decode(MAGIC + fingerprint + body.getvalue())
    assert decoded == MediaDeadLettered(
        event_id="e",
        media_id="m",
        occurred_at=NOW,
        stage="downloader",
        traceparent=None,
        error_kind="expired",
        error_message="gone",
        attempt=3,
    )


def test_every_schema_field_added_later_has_a_default():
    """New optional fields must carry a default, or old records stop decoding."""
    for path in SCHEMA_DIR.glob("*.avsc"):
        for field in json.loads(path.read_text())["fields"]:
            if isinstance(field["type"], list) and "null" in field["type"]:
                assert "default" in field, (
                    f"{path.name}:{field['name']} is nullable without a default"
                )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "no C3 01"),
        (b"", "no C3 01"),
        (b'{"json": true}', "no C3 01"),
        (MAGIC + b"\x00" * 8 + b"xyz", "unknown schema fingerprint"),
    ],
)
def test_undecodable_values_raise_a_clear_error(data, message):
    with pytest.raises(UndecodableRecord, match=message):
        AvroCodec().decode(data)


@pytest.mark.parametrize(
    "data", [None, b"{}", MAGIC + b"\x00" * 8 + b"xyz", AvroCodec().encode(SAMPLES[2])[:-3]]
)
def test_a_plain_decode_refuses_what_decode_refuses(data):
    codec = AvroCodec()
    with pytest.raises(UndecodableRecord):
        codec.decode(data)
    with pytest.raises(UndecodableRecord):
        codec.decode_plain(data)


def test_a_truncated_body_is_undecodable():
    codec = AvroCodec()
    data = codec.encode(SAMPLES[4])
    with pytest.raises(UndecodableRecord):
        codec.decode(data[:14])


def test_decoding_a_different_type_than_expected_is_refused():
    codec = AvroCodec()
    with pytest.raises(UndecodableRecord, match="expected WebhookReceived"):
        codec.decode(codec.encode(SAMPLES[4]), WebhookReceived)


def fastavro_bytes(codec: AvroCodec, record: Any) -> bytes:
    """What fastavro alone writes for ``record``: the reference for the generated writers."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, codec.schema_of(type(record)), dataclasses.asdict(record))
    return MAGIC + codec.fingerprint_of(type(record)) + buffer.getvalue()


def outcome(write: Any) -> bytes | type[BaseException]:
    try:
        return write()
    except Exception as exc:
        return type(exc)


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_every_record_type_gets_a_generated_writer_that_writes_fastavros_bytes(record):
    codec = AvroCodec()
    record_type = type(record)
    header = MAGIC + codec.fingerprint_of(record_type)
    write = generate_writer(record_type, codec.schema_of(record_type), header)
    assert write is not None
    assert write(record) == fastavro_bytes(codec, record)


CODEC = AvroCodec()


@pytest.mark.parametrize("record_type", RECORD_TYPES, ids=lambda t: t.__name__)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_record_encodes_to_fastavros_bytes_or_fails_as_fastavro_does(record_type, data):
    """Any values a record's types allow: long strings and maps, None, huge ints, naive dates."""
    record = data.draw(st.from_type(record_type))
    expected = outcome(lambda: fastavro_bytes(CODEC, record))
    header = MAGIC + CODEC.fingerprint_of(record_type)
    written = outcome(
        lambda: generate_writer(record_type, CODEC.schema_of(record_type), header)(record)
    )
    if isinstance(written, bytes):  # it may refuse what fastavro takes, never write otherwise
        assert written == expected
    assert outcome(lambda: CODEC.encode(record)) == expected


def test_a_bad_record_gets_fastavros_error_naming_the_field():
    codec = AvroCodec()
    bad = dataclasses.replace(SAMPLES[0], headers={"user-agent": 1})
    with pytest.raises(TypeError, match="must be string on field headers"):
        codec.encode(bad)


@dataclasses.dataclass
class OneField:
    value: Any


@pytest.mark.parametrize(
    "field_type",
    [
        {"type": "array", "items": "string"},
        ["null", "string", "long"],
        {"type": "enum", "name": "Colour", "symbols": ["RED"]},
        "double",
        {"type": "string", "logicalType": "uuid"},
    ],
    ids=["array", "three-branch union", "enum", "double", "uuid"],
)
def test_a_schema_the_generated_writers_do_not_cover_is_left_to_fastavro(field_type):
    schema = fastavro.parse_schema(
        {"type": "record", "name": "One", "fields": [{"name": "value", "type": field_type}]}
    )
    assert generate_writer(OneField, schema, b"") is None


def test_a_schema_field_the_dataclass_lacks_is_left_to_fastavro():
    schema = fastavro.parse_schema(
        {
            "type": "record",
            "name": "Two",
            "fields": [
                {"name": "value", "type": "string"},
                {"name": "added", "type": "string", "default": ""},
            ],
        }
    )
    assert generate_writer(OneField, schema, b"") is None


HOSTILE = "quota \ud800 exceeded \x00\x07\x1b[2J\udfff"
"""A lone surrogate (JSON's \\ud800 escape decodes to one), NUL and control characters."""
SAFE = "quota \ufffd exceeded \x00\x07\x1b[2J\ufffd"


@pytest.mark.parametrize(
    "record",
    [
        MediaDeadLettered(**COMMON, error_kind="provider_error", error_message=HOSTILE, attempt=1),
        MediaDownloadFailed(
            **COMMON,
            attempt=1,
            error_kind="provider_error",
            error_message=HOSTILE,
            retryable=True,
            next_due_at=NOW,
        ),
        MediaDetected(
            **COMMON,
            source_event_id="e-0",
            info=dataclasses.replace(INFO, file_name=HOSTILE, caption=HOSTILE),
        ),
        dataclasses.replace(SAMPLES[0], headers={"x-\udcff": HOSTILE}),
        MediaDismissed(**COMMON, operator="\udcffana", reason=HOSTILE),
    ],
    ids=lambda r: type(r).__name__,
)
def test_text_from_outside_always_encodes_lone_surrogates_becoming_the_replacement_char(record):
    decoded = CODEC.decode(CODEC.encode(record))
    as_text = "|".join(strings(dataclasses.asdict(decoded)))
    as_text.encode("utf-8")  # nothing unencodable is left anywhere in the record
    assert "\ufffd" in as_text and "\x00\x07\x1b[2J" in as_text


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(k)
            yield from strings(v)


def test_only_lone_surrogates_are_replaced():
    record = MediaDeadLettered(**COMMON, error_kind="x", error_message=HOSTILE, attempt=1)
    assert CODEC.decode(CODEC.encode(record)).error_message == SAFE


@pytest.mark.parametrize("name", ["MediaStored", "MediaDeadLettered"])
def test_events_written_before_they_carried_info_decode_without_it(name: str) -> None:
    """The first version of each schema is kept in schemas/history/: the log keeps those."""
    old = fastavro.schema.load_schema(SCHEMA_DIR / "history" / f"io.mediaflow.{name}.v1.avsc")
    parsed = fastavro.parse_schema(old)
    assert "info" not in [f["name"] for f in parsed["fields"]]
    fingerprint = bytes.fromhex(
        fastavro.schema.fingerprint(
            fastavro.schema.to_parsing_canonical_form(parsed), "CRC-64-AVRO"
        )
    )
    fields = {"event_id": "e", "media_id": "m", "occurred_at": NOW, "stage": "downloader"}
    if name == "MediaStored":
        fields |= {
            "bucket": "b",
            "key": "k",
            "size": 1,
            "sha256": "ab",
            "content_type": "image/jpeg",
            "fetch_path": "direct",
            "duration_ms": 1,
            "attempt": 1,
        }
    else:
        fields |= {"error_kind": "expired", "error_message": "gone", "attempt": 3}
    body = io.BytesIO()
    fastavro.schemaless_writer(body, parsed, fields)
    decoded = AvroCodec().decode(MAGIC + fingerprint + body.getvalue())
    assert decoded.media_id == "m"
    assert decoded.info is None
    assert AvroCodec().decode_plain(MAGIC + fingerprint + body.getvalue()) == (
        type(decoded),
        plain_record(decoded),
    )
