"""``dlq dismiss``: close dead letters an operator decided not to redrive.

Kafka records are immutable: the dead letters stay on their topic. A
``MediaDismissed`` event per media goes on the media event log, and the
projection records the decision (status ``dismissed``) when it applies it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from confluent_kafka import Producer

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.events import MediaDismissed, Stage, new_event_id, utcnow
from mediaflow.kafka.clients import transactional_producer
from mediaflow.kafka.eventlog import event_record
from mediaflow.kafka.publish import TransactionalPublisher
from mediaflow.kafka.topics import TopicLayout
from mediaflow.ops.dlq import DeadLetterView


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
        traceparent=view.traceparent,
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


__all__ = ["dismissed_event", "execute_dismiss"]
