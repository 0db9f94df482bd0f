"""Kafka header names and (de)serialisation, one contract for every stage.

Header values are UTF-8 text so that kcat and the Kafka console tools show
them as they are; text that UTF-8 cannot hold (a lone surrogate from a
provider's error message) is written with U+FFFD in its place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from mediaflow.text import to_utf8

Headers = list[tuple[str, bytes]]

# Media events (every stage writes them with mediaflow.kafka.eventlog.event_record)
EVENT_ID = "mediaflow.event-id"
SCHEMA_FINGERPRINT = "mediaflow.schema-fingerprint"
TRACEPARENT = "traceparent"
ERROR_KIND = "mediaflow.error-kind"
ERROR = "mediaflow.error"

# Retry tiers
ATTEMPT = "mediaflow.attempt"
FIRST_FAILURE_AT = "mediaflow.first-failure-at"
DUE_AT = "mediaflow.due-at"
LAST_ERROR_KIND = "mediaflow.last-error-kind"
LAST_ERROR = "mediaflow.last-error"

# Dead letters (the same for every stage; Kafka Connect / Spring Kafka style)
DLQ_ORIGINAL_TOPIC = "dlq.original.topic"
DLQ_ORIGINAL_PARTITION = "dlq.original.partition"
DLQ_ORIGINAL_OFFSET = "dlq.original.offset"
DLQ_ORIGINAL_TIMESTAMP = "dlq.original.timestamp"
DLQ_CONSUMER_GROUP = "dlq.consumer.group"
DLQ_STAGE = "dlq.stage"
DLQ_ERROR_KIND = "dlq.error.kind"
DLQ_ERROR_MESSAGE = "dlq.error.message"
DLQ_ATTEMPT = "dlq.attempt"
DLQ_FIRST_FAILURE_AT = "dlq.first-failure-at"
DLQ_FAILED_AT = "dlq.failed-at"
DLQ_MEDIA_ID = "dlq.media-id"
DLQ_VALUE_OMITTED = "dlq.value.omitted"

# Operator redrive provenance
REDRIVE_ID = "mediaflow.redrive.id"
REDRIVE_OPERATOR = "mediaflow.redrive.operator"
REDRIVE_ORIGINAL_TOPIC = "mediaflow.redrive.original-topic"
REDRIVE_ORIGINAL_PARTITION = "mediaflow.redrive.original-partition"
REDRIVE_ORIGINAL_OFFSET = "mediaflow.redrive.original-offset"

# Headers a stage owns and rewrites; everything else travels on unchanged.
RETRY_HEADERS = frozenset({ATTEMPT, FIRST_FAILURE_AT, DUE_AT, LAST_ERROR_KIND, LAST_ERROR})
DLQ_PREFIX = "dlq."


def to_dict(headers: Sequence[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Decode raw Kafka headers into text (last value wins on repeats)."""
    return {k: (v or b"").decode("utf-8", "replace") for k, v in (headers or [])}


def encode(values: Mapping[str, str | int | None]) -> Headers:
    """Encode text headers for ``Producer.produce``; ``None`` values are dropped. Never raises."""
    return [(k, to_utf8(str(v))) for k, v in values.items() if v is not None]


def without(headers: Iterable[tuple[str, bytes | None]] | None, names: Iterable[str]) -> Headers:
    """Return ``headers`` minus the given names and minus every dead-letter header."""
    drop = set(names)
    return [
        (k, v or b"") for k, v in (headers or []) if k not in drop and not k.startswith(DLQ_PREFIX)
    ]


def millis(moment: datetime) -> int:
    """Unix milliseconds of an aware datetime (header and Avro timestamp unit)."""
    return int(moment.timestamp() * 1000)


def from_millis(value: str | int | None) -> datetime | None:
    """Parse Unix milliseconds (as header text) into an aware UTC datetime."""
    if value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError):
        return None


__all__ = [name for name in dir() if name.isupper()] + [
    "Headers",
    "encode",
    "from_millis",
    "millis",
    "to_dict",
    "without",
]
