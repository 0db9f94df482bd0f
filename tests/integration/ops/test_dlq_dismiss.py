"""A dismiss that fails half-way leaves no open transaction behind it (real Kafka).

An open transaction holds every ``read_committed`` reader of its partitions
(the projection, the status tools) at its first record until the broker
times it out (``transaction.timeout.ms``, a minute here).
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import KafkaError, KafkaException

from mediaflow.codec import AvroCodec
from mediaflow.errors import MediaflowError
from mediaflow.events import MediaDismissed, Stage, utcnow
from mediaflow.kafka.clients import transactional_producer
from mediaflow.kafka.topics import load_layout
from mediaflow.ops import dismiss
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration

CODEC = AvroCodec()


def dismissal(media_id: str) -> MediaDismissed:
    return MediaDismissed(
        event_id=str(uuid.uuid4()),
        media_id=media_id,
        occurred_at=utcnow(),
        stage=Stage.OPERATOR.value,
        operator="ana",
        reason="spam",
    )


class RefusingTheSecondRecord:
    """A real transactional producer that refuses the second record, after the
    first one reached the broker (so the transaction is open there)."""

    def __init__(self, producer) -> None:
        self._producer = producer
        self._produced = 0

    def __getattr__(self, name):
        return getattr(self._producer, name)

    def produce(self, *args, **kwargs):
        self._produced += 1
        if self._produced == 2:
            self._producer.flush(10)
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "Local: Message timed out"))
        return self._producer.produce(*args, **kwargs)


def test_a_failed_dismiss_does_not_hold_back_read_committed_readers(settings):
    layout = load_layout(settings.kafka)
    failing = RefusingTheSecondRecord(
        transactional_producer(settings.kafka, f"test-dismiss-{uuid.uuid4()}")
    )
    with pytest.raises(MediaflowError):
        dismiss.execute_dismiss(
            settings, layout, CODEC, [dismissal("m-1"), dismissal("m-1")], producer=failing
        )
    later = dismissal("m-1")  # same media id: same partition as the failed transaction
    assert dismiss.execute_dismiss(settings, layout, CODEC, [later]) == 1

    seen = [CODEC.decode(m.value()).event_id for m in read_all(settings, layout.media_events)]
    assert seen == [later.event_id]
