"""Read a whole topic from its beginning without joining or disturbing any consumer group.

Operator tools and the projection rebuild use ``assign()`` with a throwaway
group id and never commit, so the stages' committed offsets are untouched. A scan stops when every
partition reported end-of-partition (control records of transactions make
"offset == high watermark - 1" an unreliable end test).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from mediaflow.config import KafkaSettings
from mediaflow.errors import BrokerUnavailable, ConfigError
from mediaflow.kafka.clients import consumer as build_consumer


def throwaway_consumer(settings: KafkaSettings, **overrides: Any) -> Consumer:
    """A consumer that never commits, under a unique group id nobody else uses."""
    return build_consumer(
        settings,
        f"mediaflow-ops-{uuid.uuid4().hex[:12]}",
        **{"enable.partition.eof": True, "statistics.interval.ms": 0, **overrides},
    )


def partitions_of(consumer: Consumer, topic: str, timeout: float = 10) -> list[int]:
    """The partition numbers of ``topic``.

    Raises:
        ConfigError: the topic does not exist.
        BrokerUnavailable: the broker did not answer.
    """
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise BrokerUnavailable(f"Kafka did not answer a metadata request: {exc}") from exc
    info = metadata.topics.get(topic)
    if info is None or info.error is not None or not info.partitions:
        raise ConfigError(f"topic {topic!r} does not exist; run `mediaflow topics apply`")
    return sorted(info.partitions)


_LEADER_LOADING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)


def watermarks(
    consumer: Consumer, topic: str, partition: int, timeout: float = 10
) -> tuple[int, int]:
    """``(low, high)`` offsets of one partition.

    Raises:
        BrokerUnavailable: the broker did not answer.
    """
    tp = TopicPartition(topic, partition)
    deadline = time.monotonic() + timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
            return int(low), int(high)
        except KafkaException as exc:
            # A partition whose leader is still loading (a new topic, a restarted
            # broker) answers NOT_LEADER_FOR_PARTITION for a moment: ask again.
            error = exc.args[0]
            loading = error.retriable() or error.code() in _LEADER_LOADING
            if not loading or time.monotonic() >= deadline:
                raise BrokerUnavailable(
                    f"cannot read watermarks of {topic}[{partition}]: {exc}"
                ) from exc
            time.sleep(0.2)


def scan(
    settings: KafkaSettings,
    topic: str,
    *,
    timeout: float = 60.0,
    on_total: Callable[[int], None] | None = None,
    start_at: Callable[[int, int], int] | None = None,
) -> Iterator[Message]:
    """Yield every committed data record of ``topic`` present when the scan starts.

    Args:
        settings: where the cluster is.
        topic: the topic to read.
        timeout: give up (stop yielding) after this many seconds.
        on_total: called once with the number of offsets to read (for progress).
        start_at: ``(low, high) -> offset`` to start a partition elsewhere than
            at its low watermark (e.g. only the newest few records).

    Raises:
        ConfigError: the topic does not exist.
        BrokerUnavailable: the broker did not answer.
    """
    consumer = throwaway_consumer(settings)
    try:
        assignment, total = [], 0
        for partition in partitions_of(consumer, topic):
            low, high = watermarks(consumer, topic, partition)
            start = start_at(low, high) if start_at else low
            if high > start:
                assignment.append(TopicPartition(topic, partition, start))
                total += high - start
        if on_total:
            on_total(total)
        if not assignment:
            return
        yield from _read_to_end(
            consumer, topic, {tp.partition: tp.offset for tp in assignment}, timeout
        )
    finally:
        consumer.close()


TAIL_WINDOW = 64
"""Offsets read back from the high watermark to find the last data record (doubled if needed)."""


def data_ends(settings: KafkaSettings, topic: str, timeout: float = 10) -> dict[int, int]:
    """The offset after the last committed data record of each partition of ``topic``.

    The high watermark counts transaction markers (one after every committed or
    aborted transaction) and aborted records, so a group that has read
    everything sits one or more offsets below it; lag and backlog measured
    against these ends are 0 when nothing is left to read. A partition is read
    back from its end (``read_committed``), a small window first, wider only
    when the window holds no data record. A partition without any data record
    ends at its low watermark.

    Raises:
        ConfigError: the topic does not exist.
        BrokerUnavailable: the broker did not answer.
    """
    consumer = throwaway_consumer(settings)
    try:
        bounds = {p: watermarks(consumer, topic, p) for p in partitions_of(consumer, topic)}
        ends = {p: low for p, (low, _high) in bounds.items()}
        window = TAIL_WINDOW
        pending = {p for p, (low, high) in bounds.items() if high > low}
        while pending:
            starts = {p: max(bounds[p][0], bounds[p][1] - window) for p in pending}
            for message in _read_to_end(consumer, topic, starts, timeout):
                ends[message.partition()] = message.offset() + 1
            pending = {p for p in pending if ends[p] == bounds[p][0] and starts[p] > bounds[p][0]}
            window *= 8
        return ends
    finally:
        consumer.close()


class RecordCounter:
    """Counts the committed data records of a topic, reading only what is new since last time.

    Markers and aborted records take offsets but are no records, so the count
    comes from reading, not from the watermarks. The first :meth:`count`
    reads the whole topic; later ones read each partition from where the
    previous one stopped, and a partition whose low watermark moved
    (retention deleted records) is counted again from its new start.
    """

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self._settings = settings
        self._topic = topic
        self._seen: dict[int, tuple[int, int, int]] = {}
        """partition -> (low watermark, next offset to read, data records before it)."""

    def count(self, timeout: float = 60) -> int:
        """The number of committed data records the topic holds now.

        Raises:
            ConfigError: the topic does not exist.
            BrokerUnavailable: the broker did not answer.
        """
        consumer = throwaway_consumer(self._settings)
        try:
            starts, counts, lows = {}, {}, {}
            for partition in partitions_of(consumer, self._topic):
                low, high = watermarks(consumer, self._topic, partition)
                seen_low, start, counted = self._seen.get(partition, (low, low, 0))
                if seen_low != low:
                    start, counted = low, 0
                lows[partition], counts[partition] = low, counted
                self._seen[partition] = (low, start, counted)
                if high > start:
                    starts[partition] = start
            if starts:
                for message in _read_to_end(consumer, self._topic, starts, timeout):
                    partition = message.partition()
                    counts[partition] += 1
                    self._seen[partition] = (
                        lows[partition],
                        message.offset() + 1,
                        counts[partition],
                    )
            return sum(counts.values())
        finally:
            consumer.close()


def count_records(settings: KafkaSettings, topic: str, timeout: float = 60) -> int:
    """How many committed data records ``topic`` holds (markers and aborted records aside).

    Raises:
        ConfigError: the topic does not exist.
        BrokerUnavailable: the broker did not answer.
    """
    return RecordCounter(settings, topic).count(timeout)


def _read_to_end(
    consumer: Consumer,
    topic: str,
    starts: dict[int, int],
    timeout: float,
    remaining: set[int] | None = None,
) -> Iterator[Message]:
    """Yield the records of ``starts``' partitions until each reported end-of-partition.

    ``remaining``: the partitions still to read, shared with a caller that
    stops early: one it removes (and pauses) is no longer waited for, though
    records of it already fetched may still come.
    """
    consumer.assign([TopicPartition(topic, p, o) for p, o in starts.items()])
    remaining = set(starts) if remaining is None else remaining
    deadline = time.monotonic() + timeout
    try:
        while remaining and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=0.5):
                error = message.error()
                if error is None:
                    yield message
                elif error.code() == KafkaError._PARTITION_EOF:
                    remaining.discard(message.partition())
                elif error.fatal():
                    raise BrokerUnavailable(f"reading {topic}: {error.str()}")
    finally:
        consumer.unassign()


def first_records(
    settings: KafkaSettings, topic: str, starts: dict[int, int], timeout: float = 10.0
) -> dict[int, Message]:
    """The first committed data record at or after ``starts[partition]``, per partition.

    Markers and aborted records are skipped (``read_committed``); a partition
    with no data record from its start on is absent from the answer.

    Raises:
        BrokerUnavailable: the broker did not answer, or failed for good while reading.
    """
    found: dict[int, Message] = {}
    consumer = throwaway_consumer(settings)
    try:
        remaining = set(starts)
        for message in _read_to_end(consumer, topic, starts, timeout, remaining):
            partition = message.partition()
            if partition in remaining:
                found[partition] = message
                # The rest of this partition's backlog is not needed.
                remaining.discard(partition)
                consumer.pause([TopicPartition(topic, partition)])
        return found
    finally:
        consumer.close()


@dataclass(frozen=True, slots=True)
class Window:
    """What :func:`read_window` kept, how many records it read, and whether it stopped early."""

    kept: list[Message]
    scanned: int
    capped: bool


def read_window(
    settings: KafkaSettings,
    topic: str,
    since_ms: int,
    until_ms: int,
    *,
    keep: Callable[[Message], bool],
    limit: int,
    timeout: float = 30.0,
) -> Window:
    """The committed data records of ``topic`` written between two times that ``keep`` accepts.

    Each partition is read from the first record at or after ``since_ms``
    (``offsets_for_times``) until its first record after ``until_ms`` or its
    end, and the whole read stops after ``limit`` records (``capped``).
    Record timestamps are the producers' clocks: give the window a margin.

    Raises:
        ConfigError: the topic does not exist.
        BrokerUnavailable: the broker did not answer.
    """
    consumer = throwaway_consumer(settings)
    try:
        wanted = [TopicPartition(topic, p, since_ms) for p in partitions_of(consumer, topic)]
        try:
            found = consumer.offsets_for_times(wanted, timeout=timeout)
        except KafkaException as exc:
            raise BrokerUnavailable(f"cannot look up offsets of {topic} by time: {exc}") from exc
        # -1: no record at or after since_ms in that partition.
        starts = {tp.partition: tp.offset for tp in found if tp.offset >= 0}
        kept: list[Message] = []
        scanned = 0
        remaining = set(starts)
        for message in _read_to_end(consumer, topic, starts, timeout, remaining):
            partition = message.partition()
            if partition not in remaining:
                continue
            if scanned >= limit:
                return Window(kept, scanned, capped=True)
            scanned += 1
            if message.timestamp()[1] > until_ms:
                remaining.discard(partition)
                consumer.pause([TopicPartition(topic, partition)])
            elif keep(message):
                kept.append(message)
        return Window(kept, scanned, capped=False)
    finally:
        consumer.close()


def fetch(
    settings: KafkaSettings, topic: str, partition: int, offset: int, *, timeout: float = 10.0
) -> Message | None:
    """Read the one committed record at ``topic[partition]@offset``.

    Returns ``None`` when no such record is there any more (retention deleted
    it, the offset or partition is past the end, or it was never committed).

    Raises:
        ConfigError: the topic does not exist.
        BrokerUnavailable: the broker did not answer, or failed for good while reading.
    """
    consumer = throwaway_consumer(settings)
    try:
        if partition not in partitions_of(consumer, topic):
            return None
        low, high = watermarks(consumer, topic, partition)
        if not low <= offset < high:
            return None
        consumer.assign([TopicPartition(topic, partition, offset)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is None:
                return message if message.offset() == offset else None
            if error.code() == KafkaError._PARTITION_EOF:
                return None
            if error.fatal():
                raise BrokerUnavailable(f"reading {topic}: {error.str()}")
        return None
    finally:
        consumer.close()


__all__ = [
    "RecordCounter",
    "Window",
    "count_records",
    "data_ends",
    "fetch",
    "first_records",
    "partitions_of",
    "read_window",
    "scan",
    "throwaway_consumer",
    "watermarks",
]
