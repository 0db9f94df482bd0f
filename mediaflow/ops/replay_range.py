"""Bounded replay: copy the records of a range back onto their topic, so it is read again.

Moving a group's offsets (:mod:`mediaflow.ops.replay`) has no end: the group
reads on from the new position to the end of the topic. To reprocess only
``[from, until)`` the records of that range are published again, key, value
and headers unchanged (retry headers reset), onto the same topic and
partition (order is kept), with provenance headers (``mediaflow.replay.*``),
in one Kafka transaction per batch. Groups keep their place, so nothing needs stopping. Every group
reading the topic reads the copies; that is safe because every stage is
idempotent (the downloader never writes a second object for a media it
stored; the projection applies each event id once).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, TopicPartition

from mediaflow.config import KafkaSettings
from mediaflow.errors import BrokerUnavailable
from mediaflow.kafka import headers as h
from mediaflow.kafka.clients import transactional_producer
from mediaflow.kafka.publish import TransactionalPublisher
from mediaflow.kafka.records import OutRecord
from mediaflow.kafka.scan import throwaway_consumer, watermarks
from mediaflow.ops.replay import ReplayTarget, selected_partitions, target_offsets

REPLAY_ID = "mediaflow.replay.id"
REPLAY_ORIGINAL_PARTITION = "mediaflow.replay.original-partition"
REPLAY_ORIGINAL_OFFSET = "mediaflow.replay.original-offset"
BATCH = 500


@dataclass(frozen=True, slots=True)
class RangePlan:
    """The offsets ``[start, end)`` of one partition to copy."""

    partition: int
    start: int
    end: int

    @property
    def count(self) -> int:
        """Offsets in the range (transaction markers included: an upper bound of records)."""
        return max(0, self.end - self.start)

    def row(self) -> dict[str, Any]:
        """The line printed for this partition."""
        return {"partition": self.partition, "from": self.start, "until": self.end}


def plan_range(
    partition: int, *, low: int, high: int, start: int | None, end: int | None
) -> RangePlan:
    """Clamp one partition's wanted range into ``[low, high]`` (pure).

    ``None`` for ``start`` or ``end`` means "after the last record" (a time later
    than every record), which makes the range empty.
    """
    first = high if start is None else min(max(start, low), high)
    last = high if end is None else min(max(end, low), high)
    return RangePlan(partition, first, max(first, last))


def compute_range(
    settings: KafkaSettings,
    topic: str,
    start: ReplayTarget,
    end: ReplayTarget,
    partition: int | None = None,
) -> list[RangePlan]:
    """Resolve ``start`` and ``end`` (times or offsets) into each partition's range.

    Raises:
        UsageError: ``partition`` does not exist.
        ConfigError: the topic does not exist.
        BrokerUnavailable: Kafka did not answer.
    """
    consumer = throwaway_consumer(settings)
    try:
        partitions = selected_partitions(consumer, topic, partition)
        starts = target_offsets(consumer, topic, partitions, start)
        ends = target_offsets(consumer, topic, partitions, end)
        plans = []
        for p in partitions:
            low, high = watermarks(consumer, topic, p)
            plans.append(plan_range(p, low=low, high=high, start=starts[p], end=ends[p]))
        return plans
    finally:
        consumer.close()


def copy_headers(message: Message, replay_id: str) -> h.Headers:
    """The record's headers minus retry and earlier replay headers, plus provenance."""
    ours = {REPLAY_ID, REPLAY_ORIGINAL_PARTITION, REPLAY_ORIGINAL_OFFSET}
    raw = [(k, v or b"") for k, v in (message.headers() or [])]
    kept = h.without(raw, h.RETRY_HEADERS | ours)
    return kept + h.encode(
        {
            REPLAY_ID: replay_id,
            REPLAY_ORIGINAL_PARTITION: message.partition(),
            REPLAY_ORIGINAL_OFFSET: message.offset(),
        }
    )


def read_range(
    settings: KafkaSettings, topic: str, plans: Sequence[RangePlan], timeout: float = 120
) -> Iterator[Message]:
    """Yield the committed data records of each plan's ``[start, end)``.

    Raises:
        BrokerUnavailable: the broker did not answer, or the range was not read in time.
    """
    todo = {p.partition: p for p in plans if p.count}
    if not todo:
        return
    consumer = throwaway_consumer(settings)
    try:
        consumer.assign([TopicPartition(topic, p.partition, p.start) for p in todo.values()])
        deadline = time.monotonic() + timeout
        while todo:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"reading {topic} took over {timeout:.0f} s; nothing sent")
            for message in consumer.consume(num_messages=BATCH, timeout=0.5):
                partition, error = message.partition(), message.error()
                plan = todo.get(partition)
                if plan is None:
                    continue
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        del todo[partition]
                    elif error.fatal():
                        raise BrokerUnavailable(f"reading {topic}: {error.str()}")
                    continue
                if message.offset() >= plan.end:
                    del todo[partition]
                    continue
                yield message
                if message.offset() + 1 >= plan.end:
                    del todo[partition]
    finally:
        consumer.close()


def copy_range(
    settings: KafkaSettings,
    topic: str,
    plans: Sequence[RangePlan],
    *,
    replay_id: str | None = None,
    progress: Any = None,
) -> int:
    """Publish the records of ``plans`` again onto ``topic``; return how many.

    Records are published in batches of :data:`BATCH`, one transaction each, as
    they are read; a failure leaves earlier batches published (each whole) and
    raises: the progress says how far it got.

    Raises:
        MediaflowError: Kafka refused or timed out (see :mod:`mediaflow.kafka.publish`).
    """
    rid = replay_id or str(uuid.uuid4())
    publisher = TransactionalPublisher(
        transactional_producer(settings, f"mediaflow-ops-replay-{rid}")
    )
    publisher.init_transactions(30)
    sent = 0
    batch: list[OutRecord] = []
    try:
        for message in read_range(settings, topic, plans):
            batch.append(
                OutRecord(
                    topic,
                    message.value(),
                    message.key(),
                    copy_headers(message, rid),
                    partition=message.partition(),
                )
            )
            if len(batch) == BATCH:
                sent += _send(publisher, batch, progress)
        sent += _send(publisher, batch, progress)
    finally:
        if progress:
            progress.close()
    return sent


def _send(publisher: TransactionalPublisher, batch: list[OutRecord], progress: Any) -> int:
    if not batch:
        return 0
    count = publisher.publish(batch)
    batch.clear()
    if progress:
        progress.advance(count)
    return count


__all__ = [
    "REPLAY_ID",
    "REPLAY_ORIGINAL_OFFSET",
    "REPLAY_ORIGINAL_PARTITION",
    "RangePlan",
    "compute_range",
    "copy_headers",
    "copy_range",
    "plan_range",
    "read_range",
]
