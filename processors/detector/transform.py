"""The detector's pure transform: one webhook envelope in, the records to produce out.

For every media the provider parser finds, two records keyed by the media id:

* :class:`~mediaflow.events.MediaDownloadRequested` on the download-request topic;
* :class:`~mediaflow.events.MediaDetected` on the media event log.

A media that can never be downloaded (an :class:`~mediaflow.providers.InvalidMedia`,
e.g. no url, a media key of the wrong length) is dead-lettered *on its own*: a
dead-letter record built by the shared :class:`~mediaflow.kafka.FailureRouter`
(so every stage writes one header contract) plus a
:class:`~mediaflow.events.MediaDeadLettered` event, in the same output list as
its good siblings and therefore in the same transaction. A problem that spoils
the whole record (not Avro, body not JSON, no chat id) is raised instead, and
the worker loop dead-letters the record. So is a webhook with more media
items (downloadable or not) than ``max_media``: a WhatsApp message carries
one media, and a body built to fan out must become one dead letter (kind
``too_many_media``), not one per item.

Event ids are UUIDv5 of (record type, source event id, media id): a record
re-read after a crash yields byte-for-byte the same ids, and a webhook that
the provider delivers twice yields the same media id, so consumers can
deduplicate on either.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mediaflow.codec import AvroCodec
from mediaflow.errors import ErrorKind, InvalidPayload
from mediaflow.events import (
    MediaDeadLettered,
    MediaDetected,
    MediaDownloadRequested,
    MediaType,
    Stage,
    WebhookReceived,
)
from mediaflow.kafka import headers as h
from mediaflow.kafka.eventlog import event_record
from mediaflow.kafka.records import InRecord, OutRecord
from mediaflow.kafka.retry import DeadLetter
from mediaflow.kafka.routing import FailureRouter
from mediaflow.logging import scrub
from mediaflow.providers import Category, FoundMedia, InvalidMedia, parse_webhook

EVENT_ID_NAMESPACE = uuid.UUID("5f0c8a4e-3b1d-5e7a-9c2f-6d8b1a0e4c73")
"""Namespace of the detector's UUIDv5 event ids. Changing it changes every id: don't."""


@dataclass(frozen=True, slots=True)
class OutputTopics:
    """Where the detector writes."""

    download_requests: str
    media_events: str


@dataclass(frozen=True, slots=True)
class Detection:
    """What one webhook turned into.

    Attributes:
        category: media, text, status or other (text/status/other produce nothing).
        outputs: every record to produce, in order.
        media_types: the type of each media emitted (metrics).
        problems: the error kind of each media dead-lettered (metrics).

    """

    category: Category
    outputs: tuple[OutRecord, ...]
    media_types: tuple[MediaType, ...] = ()
    problems: tuple[ErrorKind, ...] = ()


def read_webhook(record: InRecord, codec: AvroCodec) -> WebhookReceived:
    """Decode the envelope of a consumed record.

    Args:
        record: a record of the webhooks topic.
        codec: the Avro codec.

    Raises:
        UndecodableRecord: the value is not a WebhookReceived in single-object encoding.

    """
    return codec.decode(record.value, WebhookReceived)


def load_body(webhook: WebhookReceived) -> Any:
    """Parse the raw webhook body as JSON.

    Args:
        webhook: the envelope.

    Raises:
        InvalidPayload: (``invalid_payload``) the body is not UTF-8 JSON.

    """
    try:
        return json.loads(webhook.body)
    except (UnicodeDecodeError, ValueError) as exc:
        # The message names the position only: the body may hold personal data.
        where = f" at position {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        raise InvalidPayload(
            f"webhook body is not JSON{where} (event {webhook.event_id})",
            kind=ErrorKind.INVALID_PAYLOAD,
        ) from exc


def event_id(record_type: type, source_event_id: str, media_id: str) -> str:
    """Return the deterministic id of one output event (UUIDv5)."""
    name = f"{record_type.__name__}|{source_event_id}|{media_id}"
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, name))


def trace_of(record: InRecord, webhook: WebhookReceived) -> str | None:
    """Return the W3C trace context: the Kafka header, else the one in the envelope."""
    return record.header(h.TRACEPARENT) or webhook.headers.get(h.TRACEPARENT)


def detect(
    record: InRecord,
    webhook: WebhookReceived,
    *,
    codec: AvroCodec,
    topics: OutputTopics,
    router: FailureRouter,
    now: datetime,
    max_media: int,
) -> Detection:
    """Turn one decoded webhook into the records to produce.

    Args:
        record: the consumed record (source of the trace context and, for a
            bad media, of the dead-letter coordinates and bytes).
        webhook: its decoded envelope.
        codec: encodes the output events.
        topics: where the outputs go.
        router: builds dead-letter records with the shared header contract.
        now: the ``occurred_at`` of the events (injected: no clock here).
        max_media: the most media items (downloadable or not) one webhook may hold.

    Raises:
        InvalidPayload: the body is not JSON, or the provider parser rejected the
            envelope (unknown provider, not an object, no chat id...), or
            (``too_many_media``) it holds more than ``max_media`` media items.

    """
    result = parse_webhook(
        webhook.provider,
        load_body(webhook),
        client_id=webhook.client_id,
        instance_id=webhook.instance_id,
    )
    found = len(result.media) + len(result.problems)
    if found > max_media:
        raise InvalidPayload(
            f"the webhook holds {found} media items ({len(result.media)} downloadable), "
            f"more than the {max_media} allowed (MEDIAFLOW_MAX_MEDIA_PER_WEBHOOK; a WhatsApp "
            f"message carries one media); event {webhook.event_id}",
            kind=ErrorKind.TOO_MANY_MEDIA,
        )
    trace = trace_of(record, webhook)
    emit = _Emitter(codec, webhook.event_id, trace, now)
    outputs: list[OutRecord] = []
    for media in result.media:
        outputs += emit.found(media, topics)
    for problem in result.problems:
        outputs += emit.problem(problem, record, router, topics)
    return Detection(
        category=result.category,
        outputs=tuple(outputs),
        media_types=tuple(m.info.media_type for m in result.media),
        problems=tuple(p.error.kind for p in result.problems),
    )


@dataclass(frozen=True, slots=True)
class _Emitter:
    """Builds the output records of one webhook."""

    codec: AvroCodec
    source_event_id: str
    traceparent: str | None
    now: datetime

    def found(self, media: FoundMedia, topics: OutputTopics) -> list[OutRecord]:
        request = MediaDownloadRequested(
            event_id=event_id(MediaDownloadRequested, self.source_event_id, media.media_id),
            media_id=media.media_id,
            occurred_at=self.now,
            stage=Stage.DETECTOR.value,
            traceparent=self.traceparent,
            source_event_id=self.source_event_id,
            info=media.info,
            source=media.source,
        )
        detected = MediaDetected(
            event_id=event_id(MediaDetected, self.source_event_id, media.media_id),
            media_id=media.media_id,
            occurred_at=self.now,
            stage=Stage.DETECTOR.value,
            traceparent=self.traceparent,
            source_event_id=self.source_event_id,
            info=media.info,
        )
        return [
            event_record(topics.download_requests, request, self.codec),
            event_record(topics.media_events, detected, self.codec),
        ]

    def problem(
        self, problem: InvalidMedia, record: InRecord, router: FailureRouter, topics: OutputTopics
    ) -> list[OutRecord]:
        error = problem.error
        message = scrub(f"{problem.content_path}: {error.message}")
        decision = DeadLetter(error.kind, message, record.attempt, error)
        dead_letter = router.route(record, decision, self.now, problem.media_id)
        if problem.media_id is None:
            # No message id to derive a media id from: there is no media history to
            # write to, the dead letter alone records the loss.
            return [dead_letter]
        event = MediaDeadLettered(
            event_id=event_id(MediaDeadLettered, self.source_event_id, problem.media_id),
            media_id=problem.media_id,
            occurred_at=self.now,
            stage=Stage.DETECTOR.value,
            traceparent=self.traceparent,
            error_kind=error.kind.value,
            error_message=decision.message,
            attempt=record.attempt,
        )
        return [dead_letter, event_record(topics.media_events, event, self.codec)]


__all__ = [
    "EVENT_ID_NAMESPACE",
    "Detection",
    "OutputTopics",
    "detect",
    "event_id",
    "load_body",
    "read_webhook",
    "trace_of",
]
