"""The one consumer loop every processor runs.

A stage supplies only its transform (:class:`StageHandler`); this loop does
the Kafka work, the same way for the detector, the downloader and any future
stage:

1. fetch records without blocking the event loop and queue them per partition;
2. start up to ``concurrency`` of them at once, oldest first per partition,
   never a record before its retry due time;
3. turn each failure into a retry-tier or dead-letter record
   (:mod:`~mediaflow.kafka.handling`: a poison record never stalls its
   partition, and every started record finishes its offset);
4. when the *contiguous* finished prefix of some partition
   (:mod:`~mediaflow.kafka.partitions`) is large or old enough, produce all
   outputs of that prefix in offset order and commit the input offsets in
   one Kafka transaction (``send_offsets_to_transaction``, through the
   shared :class:`~mediaflow.kafka.publish.TransactionalPublisher`);
   nothing is committed before its work is durable;
5. pause a partition whose queue is full or whose head is not due yet, and
   resume it later, so ``max.poll.interval.ms`` is never exceeded and memory
   stays bounded.

On an abortable transaction error the publisher has aborted the transaction;
all in-memory progress is dropped and the consumer is rewound to the committed
offsets; on a fatal one (this copy was fenced by a newer one with the same
``transactional.id``) the loop stops with :class:`FatalKafkaError`. A
librdkafka call that outlives its deadline ends the process
(:mod:`~mediaflow.kafka.watchdog`).

At about 460 lines this module is the loop alone: fetching, starting,
committing, pausing, rebalancing and shutting down share one partition table
and one publisher, and their order is easiest to check read in one place.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from mediaflow.errors import BrokerUnavailable, MediaflowError
from mediaflow.events import utcnow
from mediaflow.kafka.clients import (
    AbortableKafkaError,
    FatalKafkaError,
    fatal_consume_error,
    translate,
)
from mediaflow.kafka.handling import Handling, StageHandler
from mediaflow.kafka.partitions import Partitions, PartitionState, Ready
from mediaflow.kafka.publish import TransactionalPublisher
from mediaflow.kafka.records import InRecord, OutRecord
from mediaflow.kafka.retry import RetryPolicy
from mediaflow.kafka.routing import FailureRouter
from mediaflow.kafka.watchdog import Watchdog, exit_wedged
from mediaflow.logging import get_logger
from mediaflow.metrics import COMMIT_SECONDS, IN_FLIGHT, RECORDS_IN, RECORDS_OUT, WAITING

log = get_logger("mediaflow.worker")

REWIND_DEADLINE_S = 120.0
"""How long a rewind asks for the committed offsets before the stage gives up (and restarts)."""


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
            long, or 15 s past its own timeout when it has one, is wedged
            (librdkafka can ignore its own timeout when the group coordinator
            goes away): the process exits so a supervisor restarts it.

    """

    concurrency: int = 1
    batch_max_records: int = 500
    batch_max_interval_s: float = 0.5
    max_queued_per_partition: int = 500
    transactional: bool = True
    shutdown_grace_s: float = 20.0
    call_deadline_s: float = 120.0


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
        on_wedged: what a wedged librdkafka call triggers; exiting the process by default.

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
        self._options = options
        self._clock = clock
        self._handling = Handling(stage, policy, router, clock)
        self._watchdog = Watchdog(options.call_deadline_s, on_wedged or exit_wedged)
        self._partitions = Partitions()
        self._stopping = False
        self._publisher = TransactionalPublisher(
            producer,
            transactional=options.transactional,
            guard=self._watchdog.guard,
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
        limit = self._options.max_queued_per_partition * max(1, len(self._partitions))
        room = max(0, limit - self._partitions.queued())
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
            self._partitions.state((record.topic, record.partition)).enqueue(record)
            RECORDS_IN.labels(self._stage.name, record.topic).inc()
            count += 1
        return count

    # -- processing ---------------------------------------------------------------------

    def _start_due(self) -> int:
        """Start due records, one per partition per round, while there is room.

        Round robin, so a partition with a long queue cannot take every slot
        while the records of the others wait (a latency tail of tens of seconds).
        """
        started = 0
        now = self._clock()
        free = self._options.concurrency - len(self._partitions.running())
        ready = [s for _, s in self._partitions.items() if s.head_is_due(now)]
        while free > 0 and ready:
            for state in ready:
                if free == 0:
                    break
                head = state.queued.popleft()
                task = asyncio.create_task(self._handling.process(head))
                state.running[head.offset] = task
                task.add_done_callback(lambda t, s=state, r=head: self._finished(s, r, t))
                free -= 1
                started += 1
            ready = [s for s in ready if s.head_is_due(now)]
        IN_FLIGHT.labels(self._stage.name).set(len(self._partitions.running()))
        return started

    def _finished(
        self, state: PartitionState, record: InRecord, task: asyncio.Task[list[OutRecord]]
    ) -> None:
        if state.running.pop(record.offset, None) is None or task.cancelled():
            return  # dropped by a rebalance or an abort: the record will be read again
        # A task that raised (past every handler in Handling.process) still finishes its
        # offset: left unfinished, nothing after it on the partition would ever commit.
        failure = task.exception()
        outputs = task.result() if failure is None else self._handling.internal(record, failure)
        state.finish(record.offset, outputs)

    def _drained(self, idle_for: float, idle_exit_s: float) -> bool:
        return bool(self._partitions) and not self._partitions.busy() and idle_for >= idle_exit_s

    async def _wait_for_progress(self) -> None:
        running = self._partitions.running()
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
            head_waiting = bool(state.queued) and not state.head_is_due(now)
            should_pause = len(state.queued) >= limit or head_waiting
            if should_pause != state.paused:
                tp = [TopicPartition(topic, partition)]
                (self._consumer.pause if should_pause else self._consumer.resume)(tp)
                state.paused = should_pause
        for topic, count in waiting.items():
            WAITING.labels(self._stage.name, topic).set(count)

    # -- committing ---------------------------------------------------------------------

    async def _commit_if_due(self) -> bool:
        ready = self._partitions.ready()
        count = sum(len(v) for v in ready.values())
        if count == 0:
            return False
        oldest = self._partitions.oldest_finished_at() or time.monotonic()
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
            await self._rewind()
            return False
        self._partitions.forget(ready)
        self.committed_records += count
        return True

    def _commit(self, ready: Ready, metadata: Any) -> None:
        """Produce the outputs of the ready prefixes and commit their offsets atomically."""
        started = time.monotonic()
        offsets = [TopicPartition(t, p, offs[-1] + 1) for (t, p), offs in ready.items() if offs]
        outputs = (
            out
            for tp, offs in ready.items()
            for offset in offs
            for out in self._partitions.state(tp).finished[offset]
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
            with self._watchdog.guard(method.__name__):
                return method(*args, **kwargs)
        except KafkaException as exc:
            error = translate(exc)
            if isinstance(error, BrokerUnavailable):
                # A timeout inside a transaction leaves it in an unknown state: abort it.
                raise AbortableKafkaError(error.message) from exc
            raise error from exc

    async def _rewind(self) -> None:
        """Drop all progress and seek every partition back to its committed offset.

        The committed offsets come from the group coordinator, which the same
        broker failure that aborted the transaction may be moving: a transient
        refusal (NOT_COORDINATOR, a timeout) is asked again for up to
        :data:`REWIND_DEADLINE_S` rather than ending the stage.
        """
        tps = [TopicPartition(t, p) for t, p in self._partitions]
        self._consumer.resume(tps)
        self._partitions.drop(self._partitions)
        deadline = time.monotonic() + REWIND_DEADLINE_S
        while True:
            try:
                committed = self._consumer.committed(tps, timeout=30)
                break
            except KafkaException as exc:
                error = translate(exc)
                if isinstance(error, FatalKafkaError) or time.monotonic() >= deadline:
                    raise error from exc
                log.warning("committed_offsets_retry", stage=self._stage.name, reason=error.message)
                await asyncio.sleep(1.0)
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self._consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            self._partitions.reset((tp.topic, tp.partition))

    # -- rebalancing (called from inside consume()) -------------------------------------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._partitions.state((tp.topic, tp.partition))
        self._assigned_at = time.monotonic()
        log.info("partitions_assigned", stage=self._stage.name, count=len(partitions))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Commit what is finished while we still own it; the rest is re-read by the new owner.
        ready = self._partitions.ready()
        if any(ready.values()):
            try:
                self._commit(ready, self._consumer.consumer_group_metadata())
                self._partitions.forget(ready)
            except AbortableKafkaError as exc:  # aborted by the publisher: the new owner re-reads
                log.warning("revoke_commit_aborted", reason=exc.message)
        self._partitions.drop((tp.topic, tp.partition) for tp in partitions)
        log.info("partitions_revoked", stage=self._stage.name, count=len(partitions))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Lost, not revoked: someone else may own them already, so commit nothing.
        self._partitions.drop((tp.topic, tp.partition) for tp in partitions)
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
        running = self._partitions.running()
        if running:
            await asyncio.wait(running, timeout=self._options.shutdown_grace_s)
        failures = []
        if not isinstance(ended_by, FatalKafkaError):
            failures.append(await self._shutdown_step("final_commit", self._final_commit()))
        self._partitions.drop(self._partitions)
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
        ready = self._partitions.ready()
        count = sum(len(v) for v in ready.values())
        if count == 0:
            return
        try:
            await asyncio.to_thread(self._commit, ready, self._consumer.consumer_group_metadata())
        except AbortableKafkaError as exc:  # aborted by the publisher: the next owner re-reads
            log.warning("final_commit_aborted", stage=self._stage.name, reason=exc.message)
            return
        self._partitions.forget(ready)
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


__all__ = ["Worker", "WorkerOptions"]
