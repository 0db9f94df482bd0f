"""The projection stage: media event log in, one row per media out, each event applied once.

:data:`STAGE` is what ``mediaflow run projection [--idle-exit S]`` runs
(through :func:`~mediaflow.kafka.stage_runner.run_stage`).

This stage does not use the shared transactional Worker: it produces nothing
to Kafka, and its exactly-once guarantee comes from the database instead.
Each batch and the next offset of each of its partitions are written in one
database transaction (:meth:`ProjectionStore.apply_batch`), and on every
partition assignment the consumer seeks to the offsets stored in the
database, not to Kafka's. Kafka offsets are committed too, but only as a
courtesy for lag tools: they are never read back.

Several copies may run against one PostgreSQL: they split the partitions as
a consumer group, and the store locks a partition's offset row for the
length of each batch, so the two owners of a partition during a rebalance
never apply the same record twice.

After each committed batch the touched rows are published to the compacted
``media.state`` topic (:mod:`mediaflow.processors.projection.changelog`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from prometheus_client import Counter

from mediaflow.backoff import Backoff
from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.errors import BrokerUnavailable, UndecodableRecord
from mediaflow.events import MediaEvent
from mediaflow.kafka.clients import fatal_consume_error
from mediaflow.kafka.stage_runner import StageClients, StageSpec
from mediaflow.kafka.topics import load_layout
from mediaflow.logging import get_logger
from mediaflow.processors.projection.changelog import StateChangelog
from mediaflow.storage.projection import LogRecord, ProjectionStore, StoreReplaced, open_store

log = get_logger("mediaflow.projection")

APPLIED = Counter("mediaflow_projection_applied_total", "Media events applied to the projection")
SKIPPED = Counter(
    "mediaflow_projection_undecodable_total",
    "Records on the media event log the projection skipped",
)

_BROKER_BACKOFF = Backoff()
"""How long the changelog waits for an absent broker between tries."""

_MEDIA_EVENT_TYPES: tuple[type, ...] = MediaEvent.__args__  # type: ignore[attr-defined]


def decode_record(codec: AvroCodec, message: Message) -> LogRecord:
    """Turn a consumed message into a :class:`LogRecord`; undecodable ones carry no event.

    A record nobody can read must not stop the read side for ever: it is
    logged, counted and stepped over (its offset still advances with the batch).
    """
    topic, partition, offset = _position(message)
    try:
        event = codec.decode(message.value())
    except UndecodableRecord as exc:
        _undecodable(message, exc)
        return LogRecord(topic, partition, offset, None)
    if not isinstance(event, _MEDIA_EVENT_TYPES):
        _not_a_media_event(message, type(event))
        return LogRecord(topic, partition, offset, None)
    return LogRecord(topic, partition, offset, event)


PlainEvent = tuple[type, dict[str, Any]]
"""A media event's dataclass type and its fields as :meth:`AvroCodec.decode_plain` reads them."""


def decode_plain_record(codec: AvroCodec, message: Message) -> PlainEvent | None:
    """The media event of a consumed message as its type and plain record, for :func:`fold`.

    What a rebuild reads: the fields without their dataclasses
    (:meth:`AvroCodec.decode_plain`). ``None`` for a record that is skipped,
    exactly as :func:`decode_record` skips it (logged and counted).
    """
    try:
        event_type, record = codec.decode_plain(message.value())
    except UndecodableRecord as exc:
        _undecodable(message, exc)
        return None
    if event_type not in _MEDIA_EVENT_TYPES:
        _not_a_media_event(message, event_type)
        return None
    return event_type, record


def _position(message: Message) -> tuple[str, int, int]:
    return message.topic() or "", message.partition() or 0, message.offset() or 0


def _undecodable(message: Message, exc: UndecodableRecord) -> None:
    topic, partition, offset = _position(message)
    log.error(
        "projection_undecodable", topic=topic, partition=partition, offset=offset, error=exc.message
    )
    SKIPPED.inc()


def _not_a_media_event(message: Message, record_type: type) -> None:
    topic, partition, offset = _position(message)
    log.error(
        "projection_not_a_media_event",
        topic=topic,
        partition=partition,
        offset=offset,
        record_type=record_type.__name__,
    )
    SKIPPED.inc()


class ProjectionConsumer:
    """Consume the media event log and apply it to a store, batch by batch.

    Args:
        consumer: a ``read_committed`` consumer with auto-commit off (not yet subscribed).
        store: where state and offsets live.
        codec: decodes the records.
        topic: the media event log.
        batch_max_records: most records per database transaction.
        batch_max_interval_s: longest wait for a batch to fill.
        clock: monotonic seconds (injected for tests).
        changelog: publishes the touched rows to ``media.state`` after each
            committed batch; ``None`` publishes nothing.
    """

    def __init__(
        self,
        *,
        consumer: Consumer,
        store: ProjectionStore,
        codec: AvroCodec,
        topic: str,
        batch_max_records: int = 500,
        batch_max_interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        changelog: StateChangelog | None = None,
    ) -> None:
        self._consumer = consumer
        self._changelog = changelog
        self._store = store
        self._codec = codec
        self._topic = topic
        self._batch_max = batch_max_records
        self._interval = batch_max_interval_s
        self._clock = clock
        self._generation = store.generation()
        self._stopping = False
        self._assigned_at: float | None = None
        self.applied = 0

    def stop(self) -> None:
        """Finish the current batch and return. Signal-safe."""
        self._stopping = True

    def run(self, *, idle_exit_s: float | None = None) -> None:
        """Run until :meth:`stop`, or until no record arrived for ``idle_exit_s`` (drain mode).

        Shutdown order: the batch in hand is committed to the database first,
        then the consumer is closed (leaving the group); nothing is lost if the
        process dies in between, since the offsets live in the database.

        Raises:
            FatalKafkaError: librdkafka reported a fatal error.
            BrokerUnavailable: stopped while the changelog's states were not acknowledged.
        """
        self._consumer.subscribe([self._topic], on_assign=self._on_assign)
        log.info("projection_started", topic=self._topic)
        last_activity = self._clock()
        try:
            while not self._stopping:
                messages = self._consumer.consume(self._batch_max, timeout=self._interval)
                batch = self._records(messages)
                if batch:
                    self._apply(batch)
                    last_activity = self._clock()
                elif idle_exit_s is not None and self._idle_for(last_activity) >= idle_exit_s:
                    break
        finally:
            self._consumer.close()
            log.info("projection_stopped", applied=self.applied)

    def _publish_changelog(self, changelog: StateChangelog, batch: list[LogRecord]) -> None:
        """Publish the batch's states, waiting for the broker while it is away.

        The state is already committed to the database, so publishing again is
        harmless (a compacted topic keeps the latest); stopping instead would
        turn every broker outage into a crash and a restart.
        """
        waits = 0
        while True:
            try:
                changelog.publish(batch)
                return
            except BrokerUnavailable as exc:
                if self._stopping:
                    raise
                delay = _BROKER_BACKOFF.delay(waits)
                waits += 1
                log.warning("changelog_waiting_for_broker", reason=exc.message, retry_in_s=delay)
                time.sleep(delay)

    def _idle_for(self, last_activity: float) -> float:
        # Joining the group takes seconds: idleness counts only once partitions are assigned.
        if self._assigned_at is None:
            return 0.0
        return self._clock() - max(last_activity, self._assigned_at)

    def _records(self, messages: Sequence[Message]) -> list[LogRecord]:
        batch: list[LogRecord] = []
        for message in messages:
            error = message.error()
            if error is None:
                batch.append(decode_record(self._codec, message))
            elif (fatal := fatal_consume_error(error)) is not None:
                raise fatal
            elif error.code() != KafkaError._PARTITION_EOF:
                log.warning("projection_consume_error", code=error.name(), reason=error.str())
        return batch

    def _apply(self, batch: list[LogRecord]) -> None:
        try:
            applied = self._store.apply_batch(batch, generation=self._generation)
        except StoreReplaced:
            log.info("projection_store_replaced")
            self._seek_to_stored()
            return
        self.applied += applied
        APPLIED.inc(applied)
        if self._changelog is not None:
            self._publish_changelog(self._changelog, batch)
        positions: dict[int, int] = {}
        for record in batch:
            positions[record.partition] = max(positions.get(record.partition, 0), record.offset + 1)
        # A courtesy for lag tools; the database's offsets are the ones that count.
        self._consumer.commit(
            offsets=[TopicPartition(self._topic, p, o) for p, o in positions.items()],
            asynchronous=True,
        )

    def _stored_positions(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        self._generation = self._store.generation()
        stored = self._store.offsets(self._topic)
        return [
            TopicPartition(tp.topic, tp.partition, stored.get(tp.partition, OFFSET_BEGINNING))
            for tp in partitions
        ]

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        positions = self._stored_positions(partitions)
        log.info("projection_assigned", partitions=[(tp.partition, tp.offset) for tp in positions])
        consumer.assign(positions)
        self._assigned_at = self._clock()

    def _seek_to_stored(self) -> None:
        for tp in self._stored_positions(self._consumer.assignment()):
            self._consumer.seek(tp)


class _InThread:
    """The projection's blocking loop, run in a worker thread by the stage runner.

    The event loop stays free to take SIGTERM and SIGINT, which only call
    :meth:`ProjectionConsumer.stop`; the consumer is used by that one thread only.
    """

    def __init__(self, projection: ProjectionConsumer) -> None:
        self._projection = projection

    def stop(self) -> None:
        self._projection.stop()

    async def run(self, *, idle_exit_s: float | None = None) -> None:
        await asyncio.to_thread(self._projection.run, idle_exit_s=idle_exit_s)


@asynccontextmanager
async def open_projection(settings: Settings, clients: StageClients) -> AsyncIterator[_InThread]:
    """Build the projection and its changelog; close the store once it has stopped.

    Raises:
        ConfigError: the topics file or the projection database URL is invalid.
    """
    layout = load_layout(settings.kafka)
    store = open_store(settings.projection_db_url)
    try:
        changelog = StateChangelog(
            producer=clients.producer(), store=store, topic=layout.media_state
        )
        yield _InThread(
            ProjectionConsumer(
                consumer=clients.consumer(),
                store=store,
                codec=AvroCodec(),
                topic=layout.media_events,
                batch_max_records=settings.batch_max_records,
                batch_max_interval_s=settings.batch_max_interval_s,
                changelog=changelog,
            )
        )
    finally:
        store.close()


STAGE = StageSpec(
    name="projection",
    group="mediaflow-projection",
    open=open_projection,
    # Exactly once through the database, not Kafka transactions; dynamic
    # membership hands a stopped copy's partitions over at once.
    transactional=False,
)
"""The projection as ``mediaflow run projection`` runs it."""


__all__ = [
    "STAGE",
    "PlainEvent",
    "ProjectionConsumer",
    "decode_plain_record",
    "decode_record",
    "open_projection",
]
