"""``mediaflow projection rebuild``: replay the whole media event log into a fresh store.

The log is the truth, so the projection can always be thrown away and built
again (after a bug fix in :mod:`.apply`, a schema change, a lost disk). The
new store is filled beside the live one, with a progress bar on stderr, and
swapped in atomically at the end; a running projection consumer notices the
swap (the store's generation changed) and continues from the rebuilt
store's offsets, and the API serves the new rows from its next query.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from mediaflow.codec import AvroCodec
from mediaflow.config import KafkaSettings, Settings
from mediaflow.errors import BrokerUnavailable
from mediaflow.kafka import clients
from mediaflow.kafka.topics import load_layout
from processors.projection.consumer import decode_record
from storage.projection import LogRecord, ProjectionStore, open_rebuild


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay read and how long it took."""

    events: int
    seconds: float

    @property
    def events_per_s(self) -> float:
        """Throughput of the replay."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


class Progress:
    """A one-line progress bar: done/total, events/s and ETA, redrawn at most twice a second.

    Args:
        total: events expected (from the partitions' watermarks).
        stream: where to draw; ``None`` draws nothing.
        clock: monotonic seconds.
    """

    def __init__(
        self, total: int, stream: TextIO | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.total = total
        self._stream = stream
        self._clock = clock
        self._started = clock()
        self._drawn = 0.0

    def update(self, done: int, *, final: bool = False) -> None:
        """Redraw for ``done`` events read so far."""
        now = self._clock()
        if self._stream is None or (not final and now - self._drawn < 0.5):
            return
        self._drawn = now
        self._stream.write(
            "\r" + render(done, self.total, now - self._started) + ("\n" if final else "")
        )
        self._stream.flush()


def render(done: int, total: int, elapsed_s: float, width: int = 30) -> str:
    """Return the progress line for ``done`` of ``total`` events after ``elapsed_s`` seconds."""
    fraction = min(1.0, done / total) if total else 1.0
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    eta = f"{max(0, total - done) / rate:.0f}s" if rate > 0 else "?"
    bar = "#" * int(fraction * width)
    return f"rebuild [{bar:<{width}}] {done:,}/{total:,} events  {rate:,.0f} ev/s  ETA {eta}   "


def replay(
    kafka: KafkaSettings,
    topic: str,
    store: ProjectionStore,
    *,
    batch_size: int = 5000,
    progress: TextIO | None = None,
) -> ReplayResult:
    """Apply every committed record of ``topic`` to ``store``, from the beginning to the end.

    The end is each partition's end when the replay reaches it; the store's
    offsets are then set to those ends, so a projection consumer using the
    store continues exactly where the replay stopped.

    Raises:
        BrokerUnavailable: the topic's metadata or watermarks cannot be read.
    """
    consumer = clients.consumer(
        kafka,
        f"{topic}-rebuild-{uuid.uuid4().hex[:8]}",
        **{"enable.partition.eof": True, "statistics.interval.ms": 0, "fetch.max.bytes": 64 << 20},
    )
    codec = AvroCodec()
    try:
        metadata = consumer.list_topics(topic, timeout=15)
        if topic not in metadata.topics or metadata.topics[topic].error is not None:
            raise BrokerUnavailable(f"topic {topic} is not readable; run `mediaflow topics apply`")
        partitions = sorted(metadata.topics[topic].partitions)
        total = 0
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=15)
            total += max(0, high - low)
        bar = Progress(total, progress)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        remaining = set(partitions)
        ends: dict[int, int] = {}
        done = 0
        started = time.monotonic()
        while remaining:
            batch: list[LogRecord] = []
            for message in consumer.consume(batch_size, timeout=0.5):
                error = message.error()
                if error is None:
                    batch.append(decode_record(codec, message))
                elif error.code() == KafkaError._PARTITION_EOF:
                    remaining.discard(message.partition())
                    ends[message.partition() or 0] = message.offset() or 0
                elif error.fatal():
                    raise clients.FatalKafkaError(f"{error.name()}: {error.str()}")
            store.apply_batch(batch)
            done += len(batch)
            bar.update(done)
        store.save_offsets(topic, ends)
        seconds = time.monotonic() - started
        bar.update(done, final=True)
        return ReplayResult(done, seconds)
    finally:
        consumer.close()


def rebuild(settings: Settings, *, progress: TextIO | None = None) -> ReplayResult:
    """Replay the media event log into a fresh store and swap it in for the live one.

    Raises:
        BrokerUnavailable: Kafka cannot be read.
        StorageUnavailable: PostgreSQL cannot be reached.
    """
    topic = load_layout(settings.kafka).media_events
    target = open_rebuild(settings.projection_db_url)
    try:
        result = replay(settings.kafka, topic, target.store, progress=progress)
    except BaseException:
        target.discard()
        raise
    target.swap()
    return result


def main(_args: argparse.Namespace, settings: Settings) -> int:
    """Run ``mediaflow projection rebuild``; print a summary line on stdout."""
    result = rebuild(settings, progress=sys.stderr)
    print(
        f"projection rebuilt: {result.events:,} events in {result.seconds:.1f} s "
        f"({result.events_per_s:,.0f} events/s); swapped in"
    )
    return 0


__all__ = ["Progress", "ReplayResult", "main", "rebuild", "render", "replay"]
