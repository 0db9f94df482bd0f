"""The history of one media, read from the Kafka topics rather than from its projection row.

The projection row keeps one time per kind of change (the newest failed
attempt, the newest dead letter); the topics keep every event. A media's
events on ``media.events`` and its download requests are keyed by its media
id, and its dead letters carry it in ``dlq.media-id``. Reading whole topics
for one media would not scale, so each is read over a bounded window: from
:data:`BEFORE_MS` before the media's first known time to :data:`AFTER_MS`
after its last update (both from the projection row), seeking by time and
stopping after :data:`MAX_SCANNED` records per topic. A capped history says
so (``History.capped``): its newest events may be missing.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import Message

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.errors import UndecodableRecord
from mediaflow.kafka import headers as h
from mediaflow.kafka.scan import read_window
from mediaflow.kafka.topics import TopicLayout
from mediaflow.media_state import MediaRow
from mediaflow.ops.dlq import decode_dead_letter

BEFORE_MS = 60_000
AFTER_MS = 60_000
MAX_SCANNED = 20_000
"""Records read at most per topic for one history."""
DEAD_LETTER = "dead letter"


@dataclass(frozen=True, slots=True)
class Entry:
    """One record of a media's history, as an operator reads it."""

    at: datetime | None
    topic: str
    partition: int
    offset: int
    event: str
    attempt: int | None = None
    fetch_path: str | None = None
    error_kind: str | None = None
    error: str | None = None
    dead_letter: str | None = None
    """The dead letter's id (``partition:offset``) for an entry of the dead-letter topic."""


@dataclass(frozen=True, slots=True)
class History:
    """A media's entries, oldest first, and how the read went."""

    entries: list[Entry]
    scanned: int
    capped: list[str]
    """The topics whose read stopped at :data:`MAX_SCANNED` records."""


def media_history(
    settings: Settings,
    layout: TopicLayout,
    row: MediaRow,
    *,
    limit: int = MAX_SCANNED,
    codec: AvroCodec | None = None,
) -> History:
    """Read the history of ``row``'s media from the topics (see the module docstring).

    Raises:
        ConfigError: a topic does not exist.
        BrokerUnavailable: the broker did not answer.
    """
    codec = codec or AvroCodec()
    key = row.media_id.encode()
    since, until = row.created_at - BEFORE_MS, row.updated_at + AFTER_MS
    entries: list[tuple[int, Entry]] = []
    scanned, capped = 0, []
    reads = (
        (layout.media_events, lambda m: m.key() == key, _event_entry),
        (layout.download_requests, lambda m: m.key() == key, _event_entry),
        (layout.dead_letters, lambda m: _letter_of(m, row.media_id), _letter_entry),
    )
    # The three reads wait on the broker, not the CPU: side by side they take as long as one.
    with ThreadPoolExecutor(len(reads)) as pool:
        windows = pool.map(
            lambda read: read_window(
                settings.kafka, read[0], since, until, keep=read[1], limit=limit
            ),
            reads,
        )
        for rank, ((topic, _keep, entry_of), window) in enumerate(zip(reads, windows, strict=True)):
            scanned += window.scanned
            if window.capped:
                capped.append(topic)
            entries += [(rank, entry_of(codec, m)) for m in window.kept]
    # By time; at the same time an event before the request it caused, before a dead letter.
    entries.sort(key=lambda e: (e[1].at is None, e[1].at, e[0], e[1].partition, e[1].offset))
    return History([e for _, e in entries], scanned, capped)


def _letter_of(message: Message, media_id: str) -> bool:
    named = h.to_dict(message.headers() or []).get(h.DLQ_MEDIA_ID)
    return named == media_id or (named is None and message.key() == media_id.encode())


def _record_time(message: Message) -> datetime | None:
    millis = message.timestamp()[1]
    return h.from_millis(millis) if millis and millis > 0 else None


def _event_entry(codec: AvroCodec, message: Message) -> Entry:
    headers = h.to_dict(message.headers() or [])
    where = {"topic": message.topic(), "partition": message.partition(), "offset": message.offset()}
    try:
        event = codec.decode(message.value())
    except UndecodableRecord as exc:
        return Entry(at=_record_time(message), event="undecodable", error=exc.message, **where)
    return Entry(
        at=event.occurred_at,
        event=type(event).__name__,
        attempt=getattr(event, "attempt", None),
        fetch_path=getattr(event, "fetch_path", None),
        # The headers hold the error scrubbed of secrets and URL query strings.
        error_kind=headers.get(h.ERROR_KIND),
        error=headers.get(h.ERROR),
        **where,
    )


def _letter_entry(codec: AvroCodec, message: Message) -> Entry:
    view = decode_dead_letter(
        codec,
        partition=message.partition(),
        offset=message.offset(),
        timestamp_ms=message.timestamp()[1],
        key=message.key(),
        value=message.value(),
        headers=message.headers(),
    )
    return Entry(
        at=view.when,
        topic=message.topic(),
        partition=view.partition,
        offset=view.offset,
        event=DEAD_LETTER,
        attempt=view.attempt,
        error_kind=view.error_kind,
        error=view.error_message,
        dead_letter=view.id,
    )


__all__ = [
    "AFTER_MS",
    "BEFORE_MS",
    "DEAD_LETTER",
    "MAX_SCANNED",
    "Entry",
    "History",
    "media_history",
]
