"""Dead letters: read, filter, summarise and redrive the dead-letter topic.

Every stage writes dead letters with the same ``dlq.*`` headers
(:mod:`mediaflow.kafka.routing`); this module reads them back decoded. A value
that does not decode is shown as its length and a hex prefix: that is often
why it is there.

Redrive republishes selected dead letters, original key and value unchanged,
with provenance headers (``mediaflow.redrive.*``) and fresh retry headers
(attempt 1, no due time), to

* the first retry tier, for download requests (the downloader reads it at
  once because there is no due time), or
* the original topic, for everything else (a webhook the detector could not
  read has no retry tier) and whenever ``--to-original`` is given,

together with a ``MediaRedriven`` event on the media event log, all in one
Kafka transaction per batch. The redrive headers travel with the record, so
a redriven record that fails again comes back to the dead-letter topic still
carrying ``mediaflow.redrive.id``: that is the loop marker. Such records are
shown apart and are not redriven again without ``force``.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Message, Producer

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.errors import UndecodableRecord
from mediaflow.events import (
    MediaDismissed,
    MediaDownloadRequested,
    MediaRedriven,
    Stage,
    new_event_id,
    utcnow,
)
from mediaflow.kafka import headers as h
from mediaflow.kafka.clients import transactional_producer
from mediaflow.kafka.eventlog import event_record
from mediaflow.kafka.publish import TransactionalPublisher
from mediaflow.kafka.records import OutRecord
from mediaflow.kafka.scan import scan
from mediaflow.kafka.topics import TopicLayout
from mediaflow.storage.projection import open_store

HEX_PREFIX_BYTES = 32
REDRIVE_HEADERS = frozenset(
    {
        h.REDRIVE_ID,
        h.REDRIVE_OPERATOR,
        h.REDRIVE_ORIGINAL_TOPIC,
        h.REDRIVE_ORIGINAL_PARTITION,
        h.REDRIVE_ORIGINAL_OFFSET,
    }
)


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    """One dead letter as an operator sees it (``partition:offset`` identifies it)."""

    partition: int
    offset: int
    timestamp: datetime | None
    key: bytes | None = field(repr=False)
    value: bytes | None = field(repr=False)
    headers: h.Headers = field(repr=False)
    original_topic: str | None = None
    original_partition: int | None = None
    original_offset: int | None = None
    stage: str | None = None
    group: str | None = None
    error_kind: str | None = None
    error_message: str | None = None
    attempt: int | None = None
    first_failure_at: datetime | None = None
    failed_at: datetime | None = None
    media_id: str | None = None
    record_type: str | None = None
    client_id: str | None = None
    instance_id: str | None = None
    media_type: str | None = None
    decoded: dict[str, Any] | None = field(default=None, repr=False)
    decode_error: str | None = None
    redrive_id: str | None = None

    @property
    def id(self) -> str:
        """``partition:offset`` in the dead-letter topic."""
        return f"{self.partition}:{self.offset}"

    @property
    def when(self) -> datetime | None:
        """When it was dead-lettered (header, else the record timestamp)."""
        return self.failed_at or self.timestamp

    @property
    def redriven_before(self) -> bool:
        """Loop marker: this record was redriven once already and failed again."""
        return self.redrive_id is not None

    def summary(self) -> dict[str, Any]:
        """The row shown by ``dlq list``."""
        return {
            "id": self.id,
            "failed_at": self.when,
            "stage": self.stage,
            "kind": self.error_kind,
            "client": self.client_id,
            "instance": self.instance_id,
            "type": self.media_type,
            "media_id": self.media_id,
            "attempt": self.attempt,
            "redriven": self.redriven_before,
            "message": self.error_message,
        }

    def detail(self) -> dict[str, Any]:
        """Everything ``dlq show`` prints; the raw value only as length and hex prefix."""
        return {
            **self.summary(),
            "original": f"{self.original_topic}[{self.original_partition}]@{self.original_offset}",
            "group": self.group,
            "first_failure_at": self.first_failure_at,
            "record_type": self.record_type,
            "key": (self.key or b"").decode("utf-8", "replace"),
            "value_bytes": len(self.value or b""),
            "value_hex_prefix": (self.value or b"")[:HEX_PREFIX_BYTES].hex(),
            "decode_error": self.decode_error,
            "redrive_id": self.redrive_id,
            "headers": {k: v for k, v in h.to_dict(self.headers).items() if not _secretish(k)},
            "value": self.decoded,
        }


def _secretish(name: str) -> bool:
    # Provider headers copied into WebhookReceived never carry secrets into dlq.*,
    # but a header named like a secret is not printed whatever it holds.
    return any(w in name.lower() for w in ("token", "secret", "authorization", "key"))


def decode_dead_letter(
    codec: AvroCodec,
    *,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]] | None,
) -> DeadLetterView:
    """Build the operator's view of one dead-letter record (pure, no I/O)."""
    raw = [(k, v or b"") for k, v in (headers or [])]
    text = h.to_dict(raw)
    decoded: dict[str, Any] | None = None
    record_type = decode_error = client = instance = media_type = media_id = None
    try:
        record = codec.decode(value)
        record_type = type(record).__name__
        decoded = _plain(record)
        info = getattr(record, "info", record)
        client = getattr(info, "client_id", None)
        instance = getattr(info, "instance_id", None)
        media_type = _text(getattr(info, "media_type", None))
        media_id = getattr(record, "media_id", None)
    except UndecodableRecord as exc:
        decode_error = exc.message
    return DeadLetterView(
        partition=partition,
        offset=offset,
        timestamp=h.from_millis(timestamp_ms) if timestamp_ms and timestamp_ms > 0 else None,
        key=key,
        value=value,
        headers=raw,
        original_topic=text.get(h.DLQ_ORIGINAL_TOPIC),
        original_partition=_int(text.get(h.DLQ_ORIGINAL_PARTITION)),
        original_offset=_int(text.get(h.DLQ_ORIGINAL_OFFSET)),
        stage=text.get(h.DLQ_STAGE),
        group=text.get(h.DLQ_CONSUMER_GROUP),
        error_kind=text.get(h.DLQ_ERROR_KIND),
        error_message=text.get(h.DLQ_ERROR_MESSAGE),
        attempt=_int(text.get(h.DLQ_ATTEMPT)),
        first_failure_at=h.from_millis(text.get(h.DLQ_FIRST_FAILURE_AT)),
        failed_at=h.from_millis(text.get(h.DLQ_FAILED_AT)),
        media_id=text.get(h.DLQ_MEDIA_ID) or media_id,
        record_type=record_type,
        client_id=client,
        instance_id=instance,
        media_type=media_type,
        decoded=decoded,
        decode_error=decode_error,
        redrive_id=text.get(h.REDRIVE_ID) or None,
    )


def _plain(record: Any) -> Any:
    """A decoded record as JSON-friendly data, without secrets or raw bodies."""
    if hasattr(record, "__dataclass_fields__"):
        out = {}
        for name in record.__dataclass_fields__:
            if name in ("media_key", "url"):
                out[name] = "****" if getattr(record, name) else None
            elif name == "body":
                out[name] = f"<{len(getattr(record, name) or b'')} bytes>"
            elif name == "headers":
                continue  # provider request headers may hold a webhook secret
            else:
                out[name] = _plain(getattr(record, name))
        return out
    return _text(record)


def _text(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool | datetime):
        return value
    return str(value.value if hasattr(value, "value") else value)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class DlqFilter:
    """Which dead letters a command works on; empty fields match everything."""

    ids: frozenset[str] = frozenset()
    client: str | None = None
    instance: str | None = None
    stage: str | None = None
    kind: str | None = None
    media_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    redriven: bool | None = None

    def matches(self, view: DeadLetterView) -> bool:
        """Whether ``view`` is selected."""
        if self.ids and view.id not in self.ids:
            return False
        pairs = (
            (self.client, view.client_id),
            (self.instance, view.instance_id),
            (self.stage, view.stage),
            (self.kind, view.error_kind),
            (self.media_type, view.media_type),
        )
        if any(wanted is not None and wanted != actual for wanted, actual in pairs):
            return False
        when = view.when
        if self.since and (when is None or when < self.since):
            return False
        if self.until and (when is None or when >= self.until):
            return False
        return self.redriven is None or self.redriven == view.redriven_before


def read_dead_letters(
    settings: Settings,
    layout: TopicLayout,
    codec: AvroCodec,
    *,
    progress: Any = None,
) -> list[DeadLetterView]:
    """Read and decode the whole dead-letter topic, oldest first per partition.

    Raises:
        ConfigError: the topic does not exist.
        BrokerUnavailable: the broker did not answer.
    """
    views = []
    on_total = (lambda n: setattr(progress, "total", n)) if progress else None
    for message in scan(settings.kafka, layout.dead_letters, on_total=on_total):
        views.append(view_of(codec, message))
        if progress:
            progress.advance()
    if progress:
        progress.close()
    return views


def view_of(codec: AvroCodec, message: Message) -> DeadLetterView:
    """Decode one consumed dead-letter message."""
    _kind, ts = message.timestamp()
    return decode_dead_letter(
        codec,
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        timestamp_ms=ts,
        key=message.key(),
        value=message.value(),
        headers=message.headers(),
    )


def stats(views: Iterable[DeadLetterView]) -> list[dict[str, Any]]:
    """Group by (error kind, stage): count, first and last seen, one example id and message."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for view in views:
        key = (view.error_kind or "?", view.stage or "?")
        group = groups.setdefault(
            key,
            {"kind": key[0], "stage": key[1], "count": 0, "redriven": 0}
            | {"first": None, "last": None},
        )
        group["count"] += 1
        group["redriven"] += int(view.redriven_before)
        when = view.when
        if when and (group["first"] is None or when < group["first"]):
            group["first"] = when
        if when and (group["last"] is None or when >= group["last"]):
            group["last"] = when
            group["example"] = view.id
            group["message"] = view.error_message
    return sorted(groups.values(), key=lambda g: (-g["count"], g["kind"], g["stage"]))


def count_by(views: Iterable[DeadLetterView], attribute: str) -> Counter[str]:
    """How many dead letters per value of one attribute (``stage``, ``error_kind``...)."""
    return Counter(str(getattr(v, attribute) or "?") for v in views)


# -- redrive ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedriveItem:
    """One dead letter and where, with which headers, it goes back."""

    view: DeadLetterView
    topic: str
    headers: h.Headers


@dataclass(frozen=True, slots=True)
class RedrivePlan:
    """What a redrive will do: items to send, and loop records refused (no ``force``)."""

    redrive_id: str
    operator: str
    items: tuple[RedriveItem, ...]
    refused: tuple[DeadLetterView, ...]


def target_topic(view: DeadLetterView, layout: TopicLayout, *, to_original: bool) -> str | None:
    """Where a dead letter is sent back: first retry tier for download requests, else its origin.

    Returns ``None`` when the record names no original topic and is no download request.
    """
    retry_topics = {t.topic for t in layout.retry_tiers}
    is_download = view.record_type == MediaDownloadRequested.__name__ or view.original_topic in (
        retry_topics | {layout.download_requests}
    )
    if to_original:
        if view.original_topic in retry_topics:
            # A retry tier holds records until their due time; the origin of the work is
            # the request topic.
            return layout.download_requests
        return view.original_topic
    if is_download and layout.retry_tiers:
        return layout.retry_tiers[0].topic
    return view.original_topic


def redrive_headers(view: DeadLetterView, redrive_id: str, operator: str) -> h.Headers:
    """The dead letter's headers minus ``dlq.*``, retry and redrive headers, plus provenance."""
    kept = h.without(view.headers, h.RETRY_HEADERS | REDRIVE_HEADERS)
    return kept + h.encode(
        {
            h.ATTEMPT: 1,
            h.REDRIVE_ID: redrive_id,
            h.REDRIVE_OPERATOR: operator,
            h.REDRIVE_ORIGINAL_TOPIC: view.original_topic,
            h.REDRIVE_ORIGINAL_PARTITION: view.original_partition,
            h.REDRIVE_ORIGINAL_OFFSET: view.original_offset,
        }
    )


def plan_redrive(
    views: Iterable[DeadLetterView],
    layout: TopicLayout,
    *,
    operator: str,
    to_original: bool = False,
    force: bool = False,
    redrive_id: str | None = None,
) -> RedrivePlan:
    """Decide, without I/O, what redriving ``views`` will send where.

    Args:
        views: the selected dead letters.
        layout: the topic names.
        operator: who runs it (goes into the headers and the event).
        to_original: send everything back to its original topic.
        force: redrive records that were redriven before (loop) as well.
        redrive_id: defaults to a fresh UUID.
    """
    rid = redrive_id or str(uuid.uuid4())
    items, refused = [], []
    for view in views:
        topic = target_topic(view, layout, to_original=to_original)
        if topic is None or (view.redriven_before and not force):
            refused.append(view)
            continue
        items.append(RedriveItem(view, topic, redrive_headers(view, rid, operator)))
    return RedrivePlan(rid, operator, tuple(items), tuple(refused))


def redriven_event(item: RedriveItem, plan: RedrivePlan) -> MediaRedriven | None:
    """The ``MediaRedriven`` event for one item (``None`` when no media id is known).

    It carries the dead letter's trace context, so the media's trace goes on.
    """
    if not item.view.media_id:
        return None
    return MediaRedriven(
        event_id=new_event_id(),
        media_id=item.view.media_id,
        occurred_at=utcnow(),
        stage=Stage.OPERATOR.value,
        traceparent=_traceparent(item.view),
        redrive_id=plan.redrive_id,
        operator=plan.operator,
        target_topic=item.topic,
    )


def execute_redrive(
    settings: Settings,
    layout: TopicLayout,
    codec: AvroCodec,
    plan: RedrivePlan,
    *,
    rate: float | None = None,
    batch_size: int = 100,
    progress: Any = None,
    producer: Producer | None = None,
) -> int:
    """Send ``plan``'s records and events, one Kafka transaction per batch; return records sent.

    Args:
        settings: where the cluster is.
        layout: the topic names (the event log).
        codec: encodes the ``MediaRedriven`` events.
        plan: what to send, from :func:`plan_redrive`.
        rate: at most this many records per second (``None``: as fast as Kafka takes them).
        batch_size: records per transaction (a smaller batch when ``rate`` is low).
        progress: a :class:`~mediaflow.progress.Progress`, advanced per batch.
        producer: a transactional producer; a fresh one (own transactional id) when omitted.

    Raises:
        MediaflowError: Kafka refused or timed out (see
            :mod:`mediaflow.kafka.publish`); the failed batch was aborted and
            nothing of it is visible to ``read_committed`` consumers.
    """
    if not plan.items:
        return 0
    if rate:
        batch_size = max(1, min(batch_size, int(rate)))
    publisher = TransactionalPublisher(
        producer
        or transactional_producer(settings.kafka, f"mediaflow-ops-redrive-{plan.redrive_id}")
    )
    sent = 0
    try:
        publisher.init_transactions(30)
        for start in range(0, len(plan.items), batch_size):
            began = time.monotonic()
            batch = plan.items[start : start + batch_size]
            publisher.publish(_redrive_records(layout, codec, plan, batch))
            sent += len(batch)
            if progress:
                progress.advance(len(batch))
            if rate:
                time.sleep(max(0.0, len(batch) / rate - (time.monotonic() - began)))
    finally:
        if progress:
            progress.close()
    return sent


def _redrive_records(
    layout: TopicLayout, codec: AvroCodec, plan: RedrivePlan, batch: Sequence[RedriveItem]
) -> list[OutRecord]:
    records = []
    for item in batch:
        records.append(OutRecord(item.topic, item.view.value, item.view.key, item.headers))
        event = redriven_event(item, plan)
        if event is not None:
            extra = {h.REDRIVE_ID: plan.redrive_id}
            records.append(event_record(layout.media_events, event, codec, extra=extra))
    return records


# -- dismiss ---------------------------------------------------------------------------


def dismissed_event(
    view: DeadLetterView, operator: str, reason: str | None
) -> MediaDismissed | None:
    """The ``MediaDismissed`` event for one dead letter (``None`` when no media id is known)."""
    if not view.media_id:
        return None
    return MediaDismissed(
        event_id=new_event_id(),
        media_id=view.media_id,
        occurred_at=utcnow(),
        stage=Stage.OPERATOR.value,
        traceparent=_traceparent(view),
        operator=operator,
        reason=reason,
    )


def execute_dismiss(
    settings: Settings,
    layout: TopicLayout,
    codec: AvroCodec,
    events: Sequence[MediaDismissed],
    *,
    producer: Producer | None = None,
) -> int:
    """Write the ``MediaDismissed`` events in one transaction; return how many.

    Kafka records are immutable: the dead letters stay on their topic, and the
    projection records the decision (status ``dismissed``) when it applies the events.

    Args:
        settings: where the cluster is.
        layout: the topic names (the event log).
        codec: encodes the events.
        events: from :func:`dismissed_event`.
        producer: a transactional producer; a fresh one (own transactional id) when omitted.

    Raises:
        MediaflowError: Kafka refused or timed out (see
            :mod:`mediaflow.kafka.publish`); the transaction was aborted and
            nothing was written.
    """
    if not events:
        return 0
    publisher = TransactionalPublisher(
        producer or transactional_producer(settings.kafka, f"mediaflow-ops-dismiss-{uuid.uuid4()}")
    )
    publisher.init_transactions(30)
    return publisher.publish(event_record(layout.media_events, e, codec) for e in events)


def _traceparent(view: DeadLetterView) -> str | None:
    """The dead letter's trace context: its header, else the one in the record it holds."""
    carried = (view.decoded or {}).get("traceparent")
    return h.to_dict(view.headers).get(h.TRACEPARENT) or carried or None


def dismissed_media(settings: Settings, media_ids: Iterable[str]) -> set[str]:
    """Which of ``media_ids`` the projection marks ``dismissed`` (empty when it has no store)."""
    ids = {m for m in media_ids if m}
    if not ids:
        return set()
    store = open_store(settings.projection_db_url)
    try:
        rows = [store.get(media_id) for media_id in ids]
    finally:
        store.close()
    return {r.media_id for r in rows if r is not None and r.status == "dismissed"}


def parse_time(text: str) -> datetime:
    """Parse an ISO-8601 time (naive means UTC) or Unix epoch milliseconds.

    Raises:
        ValueError: neither form.
    """
    text = text.strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


__all__ = [
    "DeadLetterView",
    "DlqFilter",
    "RedriveItem",
    "RedrivePlan",
    "count_by",
    "decode_dead_letter",
    "dismissed_event",
    "dismissed_media",
    "execute_dismiss",
    "execute_redrive",
    "parse_time",
    "plan_redrive",
    "read_dead_letters",
    "redrive_headers",
    "redriven_event",
    "stats",
    "target_topic",
    "view_of",
]
