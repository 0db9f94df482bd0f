"""``dlq redrive``: send dead letters back to be processed again.

Redrive republishes selected dead letters, original key and value unchanged,
with provenance headers (``mediaflow.redrive.*``) and fresh retry headers
(attempt 1, no due time), to

* the first retry tier, for download requests (the downloader reads it at
  once because there is no due time), or
* the first of the notifier's retry tiers, for a notification, always: back
  on ``media.events`` every consumer would read its event again;
* the original topic, for everything else (a webhook the detector could not
  read has no retry tier) and whenever ``--to-original`` is given,

together with a ``MediaRedriven`` event on the media event log (not for a
notification: the media itself is not processed again), all in one Kafka
transaction per batch. A dead letter whose value was too large to copy
(``dlq.value.omitted``) is sent with its original, read back from where its
``dlq.original.*`` headers point (:func:`with_originals`); when that is gone,
it is refused rather than sent empty. The redrive headers travel with the record, so
a redriven record that fails again comes back to the dead-letter topic still
carrying ``mediaflow.redrive.id``: that is the loop marker. Such records are
shown apart and are not redriven again without ``force``.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Producer

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.events import MediaDownloadRequested, MediaRedriven, Stage, new_event_id, utcnow
from mediaflow.kafka import headers as h
from mediaflow.kafka.clients import transactional_producer
from mediaflow.kafka.eventlog import event_record
from mediaflow.kafka.publish import TransactionalPublisher
from mediaflow.kafka.records import OutRecord
from mediaflow.kafka.scan import fetch
from mediaflow.kafka.topics import TopicLayout
from mediaflow.ops.dlq import DeadLetterView
from mediaflow.processors.notifier.stage import NAME as NOTIFIER

_REDRIVE_HEADERS = frozenset(
    {
        h.REDRIVE_ID,
        h.REDRIVE_OPERATOR,
        h.REDRIVE_ORIGINAL_TOPIC,
        h.REDRIVE_ORIGINAL_PARTITION,
        h.REDRIVE_ORIGINAL_OFFSET,
    }
)


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
    if view.stage == NOTIFIER and layout.notify_retry_tiers:
        return layout.notify_retry_tiers[0].topic
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
    kept = h.without(view.headers, h.RETRY_HEADERS | _REDRIVE_HEADERS)
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


def with_originals(settings: Settings, views: Iterable[DeadLetterView]) -> list[DeadLetterView]:
    """``views``, each dead letter whose value was left out given its original's value.

    One whose original is no longer on its topic is kept as it is (still
    :attr:`~mediaflow.ops.dlq.DeadLetterView.value_omitted`), and
    :func:`plan_redrive` refuses it.

    Raises:
        BrokerUnavailable: the broker did not answer.
    """
    restored = []
    for view in views:
        located = view.original_topic is not None and view.original_partition is not None
        if view.value_omitted and located and view.original_offset is not None:
            original = fetch(
                settings.kafka, view.original_topic, view.original_partition, view.original_offset
            )
            if original is not None and original.value() is not None:
                view = dataclasses.replace(view, value=original.value())
        restored.append(view)
    return restored


def why_refused(view: DeadLetterView) -> str:
    """Why :func:`plan_redrive` refused ``view``, in words an operator can act on."""
    if view.value_omitted:
        return (
            "its value was too large to keep in the dead letter and the original is no longer "
            f"on {view.original_topic} (retention); reprocess from the source instead"
        )
    if view.redriven_before:
        return "came back after an earlier redrive: check its cause, then use --force"
    return "names no original topic"


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
        if topic is None or view.value_omitted or (view.redriven_before and not force):
            refused.append(view)
            continue
        items.append(RedriveItem(view, topic, redrive_headers(view, rid, operator)))
    return RedrivePlan(rid, operator, tuple(items), tuple(refused))


def redriven_event(item: RedriveItem, plan: RedrivePlan) -> MediaRedriven | None:
    """The ``MediaRedriven`` event of one item; ``None`` without a media id or for a notification.

    It carries the dead letter's trace context, so the media's trace goes on.
    """
    if not item.view.media_id or item.view.stage == NOTIFIER:
        return None
    return MediaRedriven(
        event_id=new_event_id(),
        media_id=item.view.media_id,
        occurred_at=utcnow(),
        stage=Stage.OPERATOR.value,
        traceparent=item.view.traceparent,
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


__all__ = [
    "RedriveItem",
    "RedrivePlan",
    "execute_redrive",
    "plan_redrive",
    "redrive_headers",
    "redriven_event",
    "target_topic",
    "why_refused",
    "with_originals",
]
