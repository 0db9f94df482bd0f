"""Turn a failure decision into the records that carry it: retry tier or dead letter.

The dead-letter contract, the same for every stage: the original key and
value bytes unchanged, the original headers kept, plus ``dlq.*`` headers
naming the original topic, partition, offset and timestamp, the consumer
group, the stage, the error kind and message (secret-free), the attempt
count, the first-failure time and the media id where known.

A dead letter never exceeds the dead-letter topic's record size: an original
value too large to fit is left out, and ``dlq.value.omitted`` says so and
why; the ``dlq.original.*`` headers locate it on its own topic. (Copying it
would make the whole batch's transaction fail, again at every retry.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from mediaflow.errors import ErrorKind
from mediaflow.kafka import headers as h
from mediaflow.kafka.records import InRecord, OutRecord
from mediaflow.kafka.retry import DeadLetter, Decision, RetryLater
from mediaflow.kafka.topics import BROKER_MAX_MESSAGE_BYTES
from mediaflow.logging import scrub

MAX_ERROR_MESSAGE = 1000
RECORD_OVERHEAD = 512
"""Bytes allowed for a record's framing and batch header when sizing a dead letter."""


@dataclass(frozen=True, slots=True)
class FailureRouter:
    """Builds retry and dead-letter records for one stage of one consumer group.

    Attributes:
        stage: the stage's name (``dlq.stage``).
        group_id: its consumer group (``dlq.consumer.group``).
        dlq_topic: where dead letters go.
        max_record_bytes: the largest record the dead-letter topic takes
            (:func:`~mediaflow.kafka.topics.record_limit`); Kafka's default when omitted.

    """

    stage: str
    group_id: str
    dlq_topic: str
    max_record_bytes: int = BROKER_MAX_MESSAGE_BYTES

    def route(
        self, record: InRecord, decision: Decision, now: datetime, media_id: str | None = None
    ) -> OutRecord:
        """Return the record that sends ``record`` where ``decision`` says."""
        if isinstance(decision, RetryLater):
            return self._retry(record, decision, now)
        return self._dead_letter(record, decision, now, media_id)

    def _retry(self, record: InRecord, decision: RetryLater, now: datetime) -> OutRecord:
        first = record.first_failure_at or now
        headers = h.without(record.headers, h.RETRY_HEADERS) + h.encode(
            {
                h.ATTEMPT: decision.attempt,
                h.FIRST_FAILURE_AT: h.millis(first),
                h.DUE_AT: h.millis(decision.due_at),
                h.LAST_ERROR_KIND: decision.error.kind.value,
                h.LAST_ERROR: _safe(decision.error.message),
            }
        )
        return OutRecord(decision.tier.topic, record.value, record.key, headers)

    def _dead_letter(
        self, record: InRecord, decision: DeadLetter, now: datetime, media_id: str | None
    ) -> OutRecord:
        headers = h.without(record.headers, ()) + h.encode(
            {
                h.DLQ_ORIGINAL_TOPIC: record.topic,
                h.DLQ_ORIGINAL_PARTITION: record.partition,
                h.DLQ_ORIGINAL_OFFSET: record.offset,
                h.DLQ_ORIGINAL_TIMESTAMP: h.millis(record.timestamp) if record.timestamp else None,
                h.DLQ_CONSUMER_GROUP: self.group_id,
                h.DLQ_STAGE: self.stage,
                h.DLQ_ERROR_KIND: decision.kind.value,
                h.DLQ_ERROR_MESSAGE: _safe(decision.message),
                h.DLQ_ATTEMPT: decision.attempt,
                h.DLQ_FIRST_FAILURE_AT: h.millis(record.first_failure_at or now),
                h.DLQ_FAILED_AT: h.millis(now),
                h.DLQ_MEDIA_ID: media_id,
            }
        )
        return self._fitting(record, headers)

    def internal(self, record: InRecord, exc: BaseException) -> OutRecord:
        """Return the dead letter (kind ``internal``) of a record whose failure handling raised.

        The last resort of the worker loop, so built by a path that cannot fail
        itself: no decoding, no stage code, no injected clock, and header values
        made ASCII (anything else escaped) instead of encoded.

        Args:
            record: the record being handled.
            exc: what raised while its failure was handled.

        """
        failed_at = int(time.time() * 1000)
        values = {
            h.DLQ_ORIGINAL_TOPIC: record.topic,
            h.DLQ_ORIGINAL_PARTITION: record.partition,
            h.DLQ_ORIGINAL_OFFSET: record.offset,
            h.DLQ_CONSUMER_GROUP: self.group_id,
            h.DLQ_STAGE: self.stage,
            h.DLQ_ERROR_KIND: ErrorKind.INTERNAL.value,
            h.DLQ_ERROR_MESSAGE: describe_internal(exc),
            h.DLQ_ATTEMPT: record.attempt,
            h.DLQ_FIRST_FAILURE_AT: h.millis(record.first_failure_at)
            if record.first_failure_at
            else failed_at,
            h.DLQ_FAILED_AT: failed_at,
        }
        headers = [(k, v) for k, v in record.headers if not k.startswith(h.DLQ_PREFIX)]
        headers += [(k, str(v).encode("ascii", "backslashreplace")) for k, v in values.items()]
        return self._fitting(record, headers)

    def _fitting(self, record: InRecord, headers: h.Headers) -> OutRecord:
        """The dead letter, its original value left out if the record would not fit the topic."""
        value = record.value or b""
        size = len(record.key or b"") + len(value) + RECORD_OVERHEAD
        size += sum(len(k) + len(v) for k, v in headers)
        if size <= self.max_record_bytes:
            return OutRecord(self.dlq_topic, record.value, record.key, headers)
        reason = (
            f"the original value ({len(value)} bytes) does not fit the dead-letter topic "
            f"(at most {self.max_record_bytes} bytes a record); it is at its original "
            "topic, partition and offset (dlq.original.*)"
        )
        return OutRecord(
            self.dlq_topic, None, record.key, [*headers, (h.DLQ_VALUE_OMITTED, reason.encode())]
        )


def describe_internal(exc: BaseException) -> str:
    """The scrubbed, bounded text of an exception, even one whose ``str()`` raises."""
    try:
        text = scrub(str(exc))
    except Exception:  # an unprintable exception must not stop its own dead letter
        text = "(its message could not be read)"
    return f"failure handling raised {type(exc).__name__}: {text}"[:MAX_ERROR_MESSAGE]


def _safe(message: str) -> str:
    return scrub(message)[:MAX_ERROR_MESSAGE]


__all__ = ["FailureRouter", "describe_internal"]
