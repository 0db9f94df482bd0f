"""``mediaflow projection rebuild``: replay the whole media event log into a fresh store.

The log is the truth, so the projection can always be thrown away and built
again (after a bug fix in :mod:`mediaflow.media_state`, a schema change, a lost disk). The
new store is filled beside the live one, with a progress bar on stderr, and
swapped in atomically at the end; a running projection consumer notices the
swap (the store's generation changed) and continues from the rebuilt
store's offsets, and the API serves the new rows from its next query.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TextIO

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from mediaflow.codec import AvroCodec
from mediaflow.config import KafkaSettings, Settings
from mediaflow.errors import MediaflowError
from mediaflow.kafka import clients
from mediaflow.kafka.scan import partitions_of, throwaway_consumer, watermarks
from mediaflow.kafka.topics import load_layout
from mediaflow.logging import configure
from mediaflow.media_state import State, fold
from mediaflow.processors.projection.consumer import PlainEvent, decode_plain_record
from mediaflow.progress import Progress
from mediaflow.storage.projection import ProjectionStore, open_rebuild, open_store


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay read and how long it took."""

    events: int
    seconds: float

    @property
    def events_per_s(self) -> float:
        """Throughput of the replay."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


def partition_sizes(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    """Records (high minus low watermark) in each partition of ``topic``.

    Raises:
        ConfigError: the topic does not exist.
        BrokerUnavailable: the topic's metadata or watermarks cannot be read.
    """
    consumer = throwaway_consumer(kafka)
    try:
        sizes = {}
        for partition in partitions_of(consumer, topic, timeout=15):
            low, high = watermarks(consumer, topic, partition, timeout=15)
            sizes[partition] = max(0, high - low)
        return sizes
    finally:
        consumer.close()


def replay_consumer(kafka: KafkaSettings) -> Consumer:
    """The consumer a replay reads with: no group offsets, end-of-partition events, big fetches."""
    return throwaway_consumer(kafka, **{"fetch.max.bytes": 64 << 20})


def split(sizes: Mapping[int, int], workers: int) -> list[list[int]]:
    """Share partitions among at most ``workers`` replays, balancing their records.

    Largest partition first, each to the replay with the fewest records so far.
    Never returns an empty share; always at least one (every partition is
    replayed, even an empty one, so that its offset is stored).
    """
    if not sizes:
        return [[]]
    shares: list[list[int]] = [[] for _ in range(max(1, min(workers, len(sizes))))]
    loads = [0] * len(shares)
    for partition in sorted(sizes, key=lambda p: (-sizes[p], p)):
        lightest = loads.index(min(loads))
        shares[lightest].append(partition)
        loads[lightest] += sizes[partition]
    return [sorted(share) for share in shares]


FOLD_ROWS = 50_000
"""Rows a replay keeps in memory before writing them out (a row is a few hundred bytes)."""


def replay(
    kafka: KafkaSettings,
    topic: str,
    partitions: Sequence[int],
    store: ProjectionStore,
    *,
    batch_size: int = 5000,
    fold_rows: int = FOLD_ROWS,
    on_batch: Callable[[int], None] = lambda _n: None,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Fold every committed record of ``partitions`` of ``topic`` into ``store``, from the start.

    The events are decoded without their dataclasses
    (:meth:`~mediaflow.codec.AvroCodec.decode_plain`), folded into rows in
    memory by the live projection's state machine
    (:func:`mediaflow.media_state.fold`), and the rows written ``fold_rows``
    at a time, each write one transaction: a media is written about once per
    replay, not once per batch it has events in. The end is each partition's
    end when the replay reaches it; the store's offsets are then set to those
    ends, so a projection consumer using the store continues exactly where the
    replay stopped.

    Args:
        kafka: the cluster.
        topic: the media event log.
        partitions: the share of its partitions to replay.
        store: a fresh store, holding no media of these partitions yet.
        batch_size: most records consumed at once.
        fold_rows: most rows held in memory before they are written.
        on_batch: told how many records each consumed batch held (progress).
        stop: polled between batches; true abandons the replay (``ReplayStopped``).

    Returns:
        Records replayed.

    Raises:
        ReplayStopped: ``stop`` returned true.
    """
    consumer = replay_consumer(kafka)
    codec = AvroCodec()
    fold = _Fold(store, fold_rows)
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        remaining = set(partitions)
        ends: dict[int, int] = {}
        done = 0
        while remaining:
            if stop():
                raise ReplayStopped("the rebuild was stopped before the end of the log")
            events: list[PlainEvent] = []
            read = 0
            for message in consumer.consume(batch_size, timeout=0.5):
                error = message.error()
                if error is None:
                    event = decode_plain_record(codec, message)
                    if event is not None:
                        events.append(event)
                    read += 1
                elif error.code() == KafkaError._PARTITION_EOF:
                    remaining.discard(message.partition())
                    ends[message.partition() or 0] = message.offset() or 0
                elif error.fatal():
                    raise clients.FatalKafkaError(f"{error.name()}: {error.str()}")
            fold.add(events)
            done += read
            on_batch(read)
        fold.write()
        store.save_offsets(topic, ends)
        return done
    finally:
        consumer.close()


class _Fold:
    """Rows folded in memory from replayed events, written in large transactions.

    Until its first write the store holds none of the replay's media (it is
    fresh, and every event of a media is on its key's partition), so a media
    not in memory is new; after a write it may be in the store, and is read
    back before its next event is applied.
    """

    def __init__(self, store: ProjectionStore, limit: int) -> None:
        self._store = store
        self._limit = limit
        self._states: dict[str, State] = {}
        self._written = False

    def add(self, events: Sequence[PlainEvent]) -> None:
        states = self._states
        if self._written:
            missing = {record["media_id"] for _, record in events} - states.keys()
            if missing:
                states.update(self._store.load_states(missing))
        for event_type, record in events:
            media_id = record["media_id"]
            states[media_id] = fold(states.get(media_id), event_type, record)
        if len(states) >= self._limit:
            self.write()

    def write(self) -> None:
        if self._states:
            self._store.put_states(self._states.values())
            self._states = {}
            self._written = True


class ReplayStopped(MediaflowError):
    """A replay was abandoned before the end of the log (another share failed, or Ctrl-C)."""


def rebuild(
    settings: Settings, *, workers: int | None = None, progress: TextIO | None = None
) -> ReplayResult:
    """Replay the media event log into a fresh store and swap it in for the live one.

    The partitions are shared among ``workers`` processes (default: one per
    CPU, fewer for a short log, where starting a process costs more than it
    saves), each replaying its share into the fresh store, exactly as that many
    projection copies would share them live: every event of a media is on
    the partition of its key, so no two processes ever touch the same row.

    Args:
        settings: the cluster and the store to rebuild (``projection_db_url``).
        workers: processes sharing the partitions; automatic when ``None``.
        progress: where the progress bar is drawn, when it is a terminal (stderr by default).

    Raises:
        ConfigError: the media event log does not exist.
        BrokerUnavailable: Kafka cannot be read.
        StorageUnavailable: PostgreSQL cannot be reached.
    """
    topic = load_layout(settings.kafka).media_events
    sizes = partition_sizes(settings.kafka, topic)
    shares = split(sizes, workers or auto_workers(sum(sizes.values())))
    bar = Progress(
        "rebuild", total=sum(sizes.values()), stream=progress or sys.stderr, unit="events"
    )
    target = open_rebuild(settings.projection_db_url)
    started = time.monotonic()
    try:
        if len(shares) == 1:
            events = replay(settings.kafka, topic, shares[0], target.store, on_batch=bar.advance)
        else:
            events = _replay_in_processes(settings, topic, shares, target.url, bar)
    except BaseException:
        bar.close()
        target.discard()
        raise
    result = ReplayResult(events, time.monotonic() - started)
    bar.update(events)
    bar.close(keep=True)
    target.swap()
    return result


EVENTS_PER_EXTRA_WORKER = 50_000
"""A log shorter than this per extra process is replayed by fewer: starting one costs more."""


def auto_workers(total: int) -> int:
    """Processes a rebuild of ``total`` events uses by default: one per CPU, fewer if short."""
    return max(1, min(os.cpu_count() or 1, total // EVENTS_PER_EXTRA_WORKER))


def _replay_in_processes(
    settings: Settings, topic: str, shares: list[list[int]], url: str, bar: Progress
) -> int:
    # spawn, not fork: a forked child would inherit librdkafka's threads half-copied.
    context = multiprocessing.get_context("spawn")
    replayed = context.Value("q", 0)
    stopping = context.Event()
    with ProcessPoolExecutor(
        len(shares),
        mp_context=context,
        initializer=_start_worker,
        initargs=(replayed, stopping, settings.log_format, settings.log_level),
    ) as pool:
        futures = [pool.submit(_replay_share, settings.kafka, topic, s, url) for s in shares]
        try:
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
                bar.update(replayed.value)
                for future in finished:
                    future.result()  # the first failure stops the others
            return sum(future.result() for future in futures)
        except BaseException:
            stopping.set()
            raise


_worker_state: dict[str, Any] = {}


def _start_worker(replayed: Any, stopping: Any, log_format: str, log_level: str) -> None:
    configure(fmt=log_format, level=log_level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it sets `stopping`
    _worker_state.update(replayed=replayed, stopping=stopping)


def _replay_share(kafka: KafkaSettings, topic: str, partitions: list[int], url: str) -> int:
    replayed, stopping = _worker_state["replayed"], _worker_state["stopping"]

    def advance(n: int) -> None:
        with replayed.get_lock():
            replayed.value += n

    store = open_store(url)
    try:
        return replay(kafka, topic, partitions, store, on_batch=advance, stop=stopping.is_set)
    finally:
        store.close()


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``mediaflow projection rebuild``; print a summary line on stdout."""
    result = rebuild(settings, workers=getattr(args, "workers", None), progress=sys.stderr)
    print(
        f"projection rebuilt: {result.events:,} events in {result.seconds:.1f} s "
        f"({result.events_per_s:,.0f} events/s); swapped in"
    )
    return 0


__all__ = [
    "ReplayResult",
    "ReplayStopped",
    "auto_workers",
    "main",
    "partition_sizes",
    "rebuild",
    "replay",
    "replay_consumer",
    "split",
]
