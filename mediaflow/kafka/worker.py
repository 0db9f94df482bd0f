"""The one consumer loop every processor runs.

A stage supplies only its transform (:class:`StageHandler`); this loop does
the Kafka work, the same way for the detector, the downloader and any future
stage:

1. fetch records without blocking the event loop and queue them per partition;
2. start up to ``concurrency`` of them at once, oldest first per partition,
   never a record before its retry due time;
3. turn each failure into a retry-tier or dead-letter record with the
   :class:`RetryPolicy` and the :class:`FailureRouter` (a poison record never
   stalls its partition); if handling the failure raises in turn, the record
   becomes a dead letter of kind ``internal`` built by a path that cannot fail,
   so every started record finishes its offset;
4. when the *contiguous* finished prefix of some partition is large or old
   enough, produce all outputs of that prefix in offset order and commit the
   input offsets in one Kafka transaction (``send_offsets_to_transaction``,
   through the shared :class:`~mediaflow.kafka.publish.TransactionalPublisher`);
   nothing is committed before its work is durable;
5. pause a partition whose queue is full or whose head is not due yet, and
   resume it later, so ``max.poll.interval.ms`` is never exceeded and memory
   stays bounded.

On an abortable transaction error the publisher has aborted the transaction;
all in-memory progress is dropped and the consumer is rewound to the committed offsets; on a
fatal one (this copy was fenced by a newer one with the same
``transactional.id``) the loop stops with :class:`FatalKafkaError`.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from mediaflow.errors import BrokerUnavailable, ErrorKind, MediaflowError
from mediaflow.events import utcnow
from mediaflow.kafka.clients import (
    AbortableKafkaError,
    FatalKafkaError,
    fatal_consume_error,
    translate,
)
from mediaflow.kafka.publish import TransactionalPublisher
from mediaflow.kafka.records import InRecord, OutRecord
from mediaflow.kafka.retry import DeadLetter, Decision, RetryPolicy
from mediaflow.kafka.routing import FailureRouter
from mediaflow.logging import get_logger, record_context
from mediaflow.metrics import (
    COMMIT_SECONDS,
    DEAD_LETTERS,
    IN_FLIGHT,
    OUTCOMES,
    RECORDS_IN,
    RECORDS_OUT,
    WAITING,
)

log = get_logger("mediaflow.worker")

TP = tuple[str, int]


class StageHandler(Protocol):
    """What a stage gives the worker loop."""

    name: str

    async def handle(self, record: InRecord) -> Sequence[OutRecord]:
        """Process one record; return what to produce. Raise a MediaflowError to fail it."""
        ...

    def media_id_of(self, record: InRecord) -> str | None:
        """Best-effort media id of a record, for dead-letter headers."""
        ...

    def failure_records(
        self, record: InRecord, decision: Decision, now: datetime
    ) -> Sequence[OutRecord]:
        """Events that describe a failure (e.g. MediaDownloadFailed) to produce with it."""
        ...


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """Tuning of the loop.

    Attributes:
        concurrency: records processed at once by this process.
        batch_max_records: commit when this many finished records are ready...
        batch_max_interval_s: ...or when the oldest ready one waited this long.
        max_queued_per_partition: pause a partition when this many records wait.
        transactional: exactly-once commits; ``False`` only for benchmarks.
        shutdown_grace_s: how long ``stop()`` lets in-flight records finish.
        call_deadline_s: a librdkafka transaction call still running after this
            long is wedged (librdkafka can ignore its own timeout when the group
            coordinator goes away): the process exits so a supervisor restarts it.

    """

    concurrency: int = 1
    batch_max_records: int = 500
    batch_max_interval_s: float = 0.5
    max_queued_per_partition: int = 500
    transactional: bool = True
    shutdown_grace_s: float = 20.0
    call_deadline_s: float = 120.0


@dataclass(eq=False)
class _Partition:
    """Progress of one assigned partition. Offsets are kept in arrival order."""

    queued: deque[InRecord] = field(default_factory=deque)
    order: deque[int] = field(default_factory=deque)
    running: dict[int, asyncio.Task[list[OutRecord]]] = field(default_factory=dict)
    finished: dict[int, list[OutRecord]] = field(default_factory=dict)
    oldest_finished_at: float | None = None
    paused: bool = False

    def ready_prefix(self) -> list[int]:
        ready = []
        for offset in self.order:
            if offset not in self.finished:
                break
            ready.append(offset)
        return ready


class Worker:
    """Consume, process with a :class:`StageHandler`, produce and commit exactly once.

    Args:
        consumer: a ``read_committed`` consumer with auto-commit off (not yet subscribed).
        producer: a transactional producer (or a plain one with ``transactional=False``).
        stage: the stage's transform.
        topics: input topics.
        policy: where failures go.
        router: builds retry and dead-letter records.
        options: tuning.
        clock: wall clock for due times and headers (injected for tests).

    """

    def __init__(
        self,
        *,
        consumer: Consumer,
        producer: Producer,
        stage: StageHandler,
        topics: Sequence[str],
        policy: RetryPolicy,
        router: FailureRouter,
        options: WorkerOptions = WorkerOptions(),
        clock: Callable[[], datetime] = utcnow,
        on_wedged: Callable[[str], None] | None = None,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._stage = stage
        self._topics = list(topics)
        self._policy = policy
        self._router = router
        self._options = options
        self._clock = clock
        self._on_wedged = on_wedged or exit_wedged
        self._partitions: dict[TP, _Partition] = {}
        self._stopping = False
        self._publisher = TransactionalPublisher(
            producer,
            transactional=options.transactional,
            guard=self._deadline,
            on_produced=self._count_out,
        )
        self.committed_records = 0
        self._assigned_at = 0.0  # drain mode counts idleness from the last assignment

    # -- public -------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish in-flight work, commit it and return. Signal-safe."""
        self._stopping = True

    async def run(self, *, idle_exit_s: float | None = None) -> None:
        """Run until :meth:`stop`, or until idle for ``idle_exit_s`` (drain mode, for tests).

        Raises:
            FatalKafkaError: the producer was fenced or librdkafka hit a fatal error.

        """
        self._consumer.subscribe(
            self._topics,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        await asyncio.to_thread(self._publisher.init_transactions, 60)
        log.info("worker_started", stage=self._stage.name, topics=self._topics)
        last_activity = time.monotonic()
        ended_by: BaseException | None = None
        try:
            while not self._stopping:
                fetched = self._fetch()
                started = self._start_due()
                committed = await self._commit_if_due()
                self._update_pauses()
                if fetched or started or committed:
                    last_activity = time.monotonic()
                # A slow group join (a dead member's session expiring) is not idleness.
                last_activity = max(last_activity, self._assigned_at)
                if idle_exit_s is not None and self._drained(
                    time.monotonic() - last_activity, idle_exit_s
                ):
                    break
                if not fetched:
                    await self._wait_for_progress()
        except BaseException as exc:
            ended_by = exc
            raise
        finally:
            await self._shutdown(ended_by)

    # -- fetching -----------------------------------------------------------------------

    def _fetch(self) -> int:
        queued = sum(len(p.queued) for p in self._partitions.values())
        room = max(
            0, self._options.max_queued_per_partition * max(1, len(self._partitions)) - queued
        )
        if room == 0:
            return 0
        messages: list[Message] = self._consumer.consume(num_messages=min(room, 1000), timeout=0)
        count = 0
        for message in messages:
            error = message.error()
            if error is not None:
                fatal = fatal_consume_error(error)
                if fatal is not None:
                    raise fatal
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consume_error", code=error.name(), reason=error.str())
                continue
            record = InRecord.from_message(message)
            state = self._partitions.setdefault((record.topic, record.partition), _Partition())
            state.queued.append(record)
            state.order.append(record.offset)
            RECORDS_IN.labels(self._stage.name, record.topic).inc()
            count += 1
        return count

    # -- processing ---------------------------------------------------------------------

    def _in_flight(self) -> int:
        return sum(len(p.running) for p in self._partitions.values())

    def _start_due(self) -> int:
        """Start due records, one per partition per round, while there is room.

        Round robin, so a partition with a long queue cannot take every slot
        while the records of the others wait (a latency tail of tens of seconds).
        """
        started = 0
        now = self._clock()
        free = self._options.concurrency - self._in_flight()
        ready = [s for s in self._partitions.values() if _head_is_due(s, now)]
        while free > 0 and ready:
            for state in ready:
                if free == 0:
                    break
                head = state.queued.popleft()
                task = asyncio.create_task(self._process(head))
                state.running[head.offset] = task
                task.add_done_callback(lambda t, s=state, r=head: self._finished(s, r, t))
                free -= 1
                started += 1
            ready = [s for s in ready if _head_is_due(s, now)]
        IN_FLIGHT.labels(self._stage.name).set(self._in_flight())
        return started

    async def _process(self, record: InRecord) -> list[OutRecord]:
        with record_context(topic=record.topic, partition=record.partition, offset=record.offset):
            try:
                outputs = list(await self._stage.handle(record))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must not stall the partition either
                return self._handle_failure(record, exc)
            OUTCOMES.labels(self._stage.name, "ok", "").inc()
            return outputs

    def _handle_failure(self, record: InRecord, exc: Exception) -> list[OutRecord]:
        """Route a failed record; if routing it raises in turn, dead-letter it as ``internal``."""
        try:
            if not isinstance(exc, MediaflowError):
                log.error("stage_crashed", stage=self._stage.name, exc_info=exc)
                exc = MediaflowError(f"unexpected {type(exc).__name__}: {exc}")
            return self._failed(record, exc)
        except Exception as failure:
            return [self._internal(record, failure)]

    def _internal(self, record: InRecord, failure: BaseException) -> OutRecord:
        """The dead letter of a record whose failure handling raised; it cannot fail itself.

        The record is safe once the dead letter exists; a log or metric that
        raises after that must not lose it, so theirs are the only errors ignored.
        """
        dead = self._router.internal(record, failure)
        with suppress(Exception):
            OUTCOMES.labels(self._stage.name, "dead_lettered", ErrorKind.INTERNAL.value).inc()
            DEAD_LETTERS.labels(self._stage.name, ErrorKind.INTERNAL.value).inc()
            log.error(
                "failure_handling_failed",
                stage=self._stage.name,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                error_type=type(failure).__name__,
                exc_info=failure,
            )
        return dead

    def _failed(self, record: InRecord, error: MediaflowError) -> list[OutRecord]:
        now = self._clock()
        decision = self._policy.decide(record.attempt, error, now)
        media_id = self._stage.media_id_of(record)
        outcome = "dead_lettered" if isinstance(decision, DeadLetter) else "retry"
        OUTCOMES.labels(self._stage.name, outcome, decision_kind(decision)).inc()
        if isinstance(decision, DeadLetter):
            DEAD_LETTERS.labels(self._stage.name, decision.kind.value).inc()
        log.warning(
            "record_failed",
            stage=self._stage.name,
            media_id=media_id,
            attempt=record.attempt,
            error_kind=error.kind.value,
            error=error.message,
            outcome=outcome,
        )
        routed = self._router.route(record, decision, now, media_id)
        return [routed, *self._stage.failure_records(record, decision, now)]

    def _finished(
        self, state: _Partition, record: InRecord, task: asyncio.Task[list[OutRecord]]
    ) -> None:
        if state.running.pop(record.offset, None) is None or task.cancelled():
            return  # dropped by a rebalance or an abort: the record will be read again
        # A task that raised (past every handler in _process) still finishes its offset:
        # left unfinished, nothing after it on the partition would ever commit.
        failure = task.exception()
        outputs = task.result() if failure is None else [self._internal(record, failure)]
        state.finished[record.offset] = outputs
        if state.oldest_finished_at is None:
            state.oldest_finished_at = time.monotonic()

    def _busy(self) -> bool:
        return any(p.queued or p.running or p.finished for p in self._partitions.values())

    def _drained(self, idle_for: float, idle_exit_s: float) -> bool:
        return bool(self._partitions) and not self._busy() and idle_for >= idle_exit_s

    async def _wait_for_progress(self) -> None:
        running = [t for p in self._partitions.values() for t in p.running.values()]
        if running:
            await asyncio.wait(running, timeout=0.02, return_when=asyncio.FIRST_COMPLETED)
        else:
            await asyncio.sleep(0.02)

    # -- pausing ------------------------------------------------------------------------

    def _update_pauses(self) -> None:
        now = self._clock()
        limit = self._options.max_queued_per_partition
        waiting: dict[str, int] = dict.fromkeys(self._topics, 0)
        for (topic, partition), state in self._partitions.items():
            waiting[topic] = waiting.get(topic, 0) + len(state.queued)
            head_waiting = bool(state.queued) and not _head_is_due(state, now)
            should_pause = len(state.queued) >= limit or head_waiting
            if should_pause != state.paused:
                tp = [TopicPartition(topic, partition)]
                (self._consumer.pause if should_pause else self._consumer.resume)(tp)
                state.paused = should_pause
        for topic, count in waiting.items():
            WAITING.labels(self._stage.name, topic).set(count)

    # -- committing ---------------------------------------------------------------------

    async def _commit_if_due(self) -> bool:
        ready = {tp: s.ready_prefix() for tp, s in self._partitions.items()}
        count = sum(len(v) for v in ready.values())
        if count == 0:
            return False
        oldest = min(
            (s.oldest_finished_at for s in self._partitions.values() if s.oldest_finished_at),
            default=time.monotonic(),
        )
        if not (
            count >= self._options.batch_max_records
            or time.monotonic() - oldest >= self._options.batch_max_interval_s
        ):
            return False
        metadata = self._consumer.consumer_group_metadata()
        try:
            await asyncio.to_thread(self._commit, ready, metadata)
        except AbortableKafkaError as exc:
            # The publisher aborted it: nothing of the batch is visible; read it all again.
            log.warning("transaction_aborted", stage=self._stage.name, reason=exc.message)
            self._rewind()
            return False
        self._forget(ready)
        self.committed_records += count
        return True

    def _commit(self, ready: dict[TP, list[int]], metadata: Any) -> None:
        """Produce the outputs of the ready prefixes and commit their offsets atomically."""
        started = time.monotonic()
        offsets = [TopicPartition(t, p, offs[-1] + 1) for (t, p), offs in ready.items() if offs]
        outputs = (
            out
            for tp, offs in ready.items()
            for offset in offs
            for out in self._partitions[tp].finished[offset]
        )
        if self._options.transactional:
            self._publisher.publish(outputs, offsets=offsets, group_metadata=metadata)
        else:
            self._publisher.publish(outputs)
            self._call(self._consumer.commit, offsets=offsets, asynchronous=False)
        COMMIT_SECONDS.labels(self._stage.name).observe(time.monotonic() - started)

    def _count_out(self, out: OutRecord) -> None:
        RECORDS_OUT.labels(self._stage.name, out.topic).inc()

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            with self._deadline(method.__name__):
                return method(*args, **kwargs)
        except KafkaException as exc:
            error = translate(exc)
            if isinstance(error, BrokerUnavailable):
                # A timeout inside a transaction leaves it in an unknown state: abort it.
                raise AbortableKafkaError(error.message) from exc
            raise error from exc

    @contextmanager
    def _deadline(self, call: str) -> Iterator[None]:
        """Call ``on_wedged`` from a watchdog thread if the block outlives the deadline."""
        timer = threading.Timer(self._options.call_deadline_s, self._on_wedged, args=(call,))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def _forget(self, committed: dict[TP, list[int]]) -> None:
        for tp, offsets in committed.items():
            state = self._partitions.get(tp)
            if state is None:
                continue
            for offset in offsets:
                state.order.popleft()
                del state.finished[offset]
            state.oldest_finished_at = time.monotonic() if state.finished else None

    def _rewind(self) -> None:
        """Drop all progress and seek every partition back to its committed offset."""
        tps = [TopicPartition(t, p) for t, p in self._partitions]
        self._consumer.resume(tps)
        self._drop(list(self._partitions))
        try:
            committed = self._consumer.committed(tps, timeout=30)
        except KafkaException as exc:
            raise translate(exc) from exc
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self._consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            self._partitions[(tp.topic, tp.partition)] = _Partition()

    def _drop(self, tps: list[TP]) -> None:
        for tp in tps:
            state = self._partitions.pop(tp, None)
            if state is None:
                continue
            for task in state.running.values():
                task.cancel()
            state.running.clear()

    # -- rebalancing (called from inside consume()) -------------------------------------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._partitions.setdefault((tp.topic, tp.partition), _Partition())
        self._assigned_at = time.monotonic()
        log.info("partitions_assigned", stage=self._stage.name, count=len(partitions))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Commit what is finished while we still own it; the rest is re-read by the new owner.
        ready = {tp: s.ready_prefix() for tp, s in self._partitions.items()}
        if any(ready.values()):
            try:
                self._commit(ready, self._consumer.consumer_group_metadata())
                self._forget(ready)
            except AbortableKafkaError as exc:  # aborted by the publisher: the new owner re-reads
                log.warning("revoke_commit_aborted", reason=exc.message)
        self._drop([(tp.topic, tp.partition) for tp in partitions])
        log.info("partitions_revoked", stage=self._stage.name, count=len(partitions))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Lost, not revoked: someone else may own them already, so commit nothing.
        self._drop([(tp.topic, tp.partition) for tp in partitions])
        log.warning("partitions_lost", stage=self._stage.name, count=len(partitions))

    # -- shutdown -----------------------------------------------------------------------

    async def _shutdown(self, ended_by: BaseException | None) -> None:
        """Stop cleanly, in this order.

        1. no new records; let in-flight ones finish (bounded by the grace period);
        2. commit what finished, unless a fatal error ended the loop (its producer
           cannot commit any more);
        3. drop the rest: the next owner of each partition reads it again;
        4. leave the group (close the consumer);
        5. flush the producer.

        Every step runs even when one before it failed; a failure is logged. The
        error that ended the loop is the one raised; after a clean stop, a fatal
        Kafka error of a step is raised (the process must exit as fatal), any
        other is only logged, since everything committed is durable already.
        """
        running = [t for p in self._partitions.values() for t in p.running.values()]
        if running:
            await asyncio.wait(running, timeout=self._options.shutdown_grace_s)
        failures = []
        if not isinstance(ended_by, FatalKafkaError):
            failures.append(await self._shutdown_step("final_commit", self._final_commit()))
        self._drop(list(self._partitions))
        failures.append(
            await self._shutdown_step("close_consumer", asyncio.to_thread(self._consumer.close))
        )
        failures.append(
            await self._shutdown_step("flush_producer", asyncio.to_thread(self._producer.flush, 10))
        )
        log.info("worker_stopped", stage=self._stage.name, committed=self.committed_records)
        fatal = next((f for f in failures if isinstance(f, FatalKafkaError)), None)
        if ended_by is None and fatal is not None:
            raise fatal

    async def _final_commit(self) -> None:
        ready = {tp: s.ready_prefix() for tp, s in self._partitions.items()}
        count = sum(len(v) for v in ready.values())
        if count == 0:
            return
        try:
            await asyncio.to_thread(self._commit, ready, self._consumer.consumer_group_metadata())
        except AbortableKafkaError as exc:  # aborted by the publisher: the next owner re-reads
            log.warning("final_commit_aborted", stage=self._stage.name, reason=exc.message)
            return
        self._forget(ready)
        self.committed_records += count

    async def _shutdown_step(
        self, step: str, work: Coroutine[Any, Any, Any]
    ) -> MediaflowError | None:
        """Await one shutdown step; return its Kafka or mediaflow error instead of raising it."""
        try:
            await work
        except KafkaException as exc:
            error = translate(exc)
        except MediaflowError as exc:
            error = exc
        else:
            return None
        log.error(
            "shutdown_step_failed",
            stage=self._stage.name,
            step=step,
            reason=error.message,
            fatal=isinstance(error, FatalKafkaError),
        )
        return error


def _head_is_due(state: _Partition, now: datetime) -> bool:
    return bool(state.queued) and (state.queued[0].due_at is None or state.queued[0].due_at <= now)


EXIT_WEDGED = 70
"""Exit status of a process whose librdkafka call wedged (EX_SOFTWARE)."""


def exit_wedged(call: str) -> None:
    """Exit the process at once: a wedged librdkafka call cannot be interrupted.

    Exactly-once still holds: nothing of the open transaction is visible to
    ``read_committed`` readers; the broker aborts it at ``transaction.timeout.ms``
    or the restarted copy (same ``transactional.id``) fences and aborts it, and
    the input is read again from the committed offsets.
    """
    log.critical(
        "kafka_call_wedged",
        call=call,
        hint="exiting so the supervisor restarts this copy; no committed work is lost",
    )
    os._exit(EXIT_WEDGED)


def decision_kind(decision: Decision) -> str:
    """The error kind a decision carries (metrics label)."""
    return decision.kind.value if isinstance(decision, DeadLetter) else decision.error.kind.value


__all__ = [
    "EXIT_WEDGED",
    "StageHandler",
    "Worker",
    "WorkerOptions",
    "decision_kind",
    "exit_wedged",
]
