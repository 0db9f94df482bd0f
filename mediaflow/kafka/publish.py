"""Publish a batch of records in one Kafka transaction: all of it, or none of it.

The one produce/flush/commit-or-abort sequence in mediaflow. The worker loop
commits its batches (with the input offsets) through it, and so does every
operator command that writes to Kafka (``dlq redrive``, ``dlq dismiss``,
``reprocess``): a fix such as "abort on every failure" is made here, once.

:meth:`TransactionalPublisher.publish`, step by step:

1. begin the transaction;
2. produce every record; a full local queue is drained by polling, for at
   most ``timeout_s``;
3. send the consumer's offsets to the transaction, when given;
4. flush, and fail the batch on any delivery error the delivery callback
   recorded (librdkafka reports them there, not at ``produce``);
5. commit; a retriable commit error is retried until ``commit_deadline_s``.

Whatever fails in steps 1-5 aborts the transaction before the error is
raised, so nothing of the batch is visible to ``read_committed`` readers and
no open transaction holds them back until the broker times it out.

Errors raised (librdkafka's translated by :func:`~mediaflow.kafka.clients.translate`):

* :class:`~mediaflow.kafka.clients.FatalKafkaError`: the producer is fenced
  or broken for good; stop using it;
* :class:`~mediaflow.kafka.clients.AbortableKafkaError`: the batch was
  aborted and may be published again (broker away, timeout, delivery error);
* :class:`~mediaflow.errors.BrokerUnavailable`: the batch was aborted
  because Kafka refused a record itself (too large, unknown topic): sending
  the same batch again will fail the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from mediaflow.errors import BrokerUnavailable
from mediaflow.kafka.clients import AbortableKafkaError, FatalKafkaError, translate
from mediaflow.kafka.records import OutRecord
from mediaflow.logging import get_logger

log = get_logger("mediaflow.kafka.publish")

Guard = Callable[[str, float | None], AbstractContextManager[Any]]
"""Wraps each librdkafka call, given its name and its own timeout (the worker's watchdog)."""


def _unguarded(_call: str, _timeout_s: float | None) -> AbstractContextManager[Any]:
    return nullcontext()


class TransactionalPublisher:
    """Publishes batches of :class:`~mediaflow.kafka.records.OutRecord` atomically.

    Example::

        publisher = TransactionalPublisher(transactional_producer(settings.kafka, tid))
        publisher.init_transactions()
        publisher.publish(records)

    Args:
        producer: a transactional producer (a plain one with ``transactional=False``).
        transactional: ``False`` only for benchmarks: produce and flush, no
            transaction (nothing to abort; a failed batch may be partly written).
        timeout_s: the timeout of each librdkafka call, and the longest wait
            for room in a full local queue.
        commit_deadline_s: how long a retriable commit error is retried.
        guard: wraps every librdkafka call (the worker's watchdog for wedged calls).
        on_produced: called with each record once the producer accepted it (metrics).

    """

    def __init__(
        self,
        producer: Producer,
        *,
        transactional: bool = True,
        timeout_s: float = 30.0,
        commit_deadline_s: float = 60.0,
        guard: Guard = _unguarded,
        on_produced: Callable[[OutRecord], None] | None = None,
    ) -> None:
        self._producer = producer
        self._transactional = transactional
        self._timeout = timeout_s
        self._commit_deadline = commit_deadline_s
        self._guard = guard
        self._on_produced = on_produced
        self._delivery_errors: list[KafkaError] = []

    def init_transactions(self, timeout_s: float = 60.0) -> None:
        """Register the transactional id with the broker (fencing an older copy); once, first.

        Raises:
            FatalKafkaError: fenced or misconfigured.
            AbortableKafkaError: the broker did not answer in time.

        """
        if self._transactional:
            self._call("init_transactions", self._producer.init_transactions, timeout_s=timeout_s)

    def publish(
        self,
        records: Iterable[OutRecord],
        *,
        offsets: Sequence[TopicPartition] = (),
        group_metadata: Any = None,
    ) -> int:
        """Produce ``records`` (and commit ``offsets`` for the group) in one transaction.

        Args:
            records: what to produce, in order.
            offsets: consumer offsets to commit with the records (the worker's input).
            group_metadata: ``Consumer.consumer_group_metadata()``, with ``offsets``.

        Returns:
            How many records were published.

        Raises:
            FatalKafkaError: see the module docstring; the batch was not published.
            AbortableKafkaError: same.
            BrokerUnavailable: same.

        """
        self._delivery_errors = []
        if not self._transactional:
            count = self._produce_all(records)
            self._flush()
            return count
        self._call("begin_transaction", self._producer.begin_transaction)
        try:
            count = self._produce_all(records)
            if offsets:
                self._call(
                    "send_offsets_to_transaction",
                    self._producer.send_offsets_to_transaction,
                    list(offsets),
                    group_metadata,
                    timeout_s=self._timeout,
                )
            self._flush()
            self._commit()
        except FatalKafkaError:
            raise  # a fenced or broken producer cannot abort
        except BaseException:
            self._abort()
            raise
        return count

    # -- steps ----------------------------------------------------------------------------

    def _produce_all(self, records: Iterable[OutRecord]) -> int:
        count = 0
        for record in records:
            self._produce(record)
            count += 1
        return count

    def _produce(self, record: OutRecord) -> None:
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                self._producer.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=record.headers,
                    partition=-1 if record.partition is None else record.partition,
                    on_delivery=self._on_delivery,
                )
                break
            except BufferError as exc:
                if time.monotonic() >= deadline:
                    raise AbortableKafkaError(
                        f"the producer's local queue stayed full for {self._timeout:g} s"
                    ) from exc
                self._producer.poll(0.1)  # let deliveries drain the queue
            except KafkaException as exc:
                raise translate(exc) from exc
        if self._on_produced is not None:
            self._on_produced(record)

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._delivery_errors.append(error)

    def _flush(self) -> None:
        with self._guard("flush", self._timeout):
            remaining = self._producer.flush(self._timeout)
        if remaining or self._delivery_errors:
            reason = (
                self._delivery_errors[0].str()
                if self._delivery_errors
                else f"{remaining} records still queued after {self._timeout:g} s"
            )
            raise AbortableKafkaError(f"delivery failed: {reason}")

    def _commit(self) -> None:
        deadline = time.monotonic() + self._commit_deadline
        while True:
            try:
                with self._guard("commit_transaction", self._timeout):
                    self._producer.commit_transaction(self._timeout)
                return
            except KafkaException as exc:
                error = translate(exc)
                retriable = exc.args[0].retriable() and time.monotonic() < deadline
                if isinstance(error, BrokerUnavailable) and retriable:
                    continue
                if isinstance(error, BrokerUnavailable):
                    raise AbortableKafkaError(error.message) from exc
                raise error from exc

    def _abort(self) -> None:
        """Abort the open transaction; a failure to abort is logged, the batch's error wins."""
        try:
            self._call(
                "abort_transaction", self._producer.abort_transaction, timeout_s=self._timeout
            )
        except FatalKafkaError:
            raise
        except AbortableKafkaError as exc:
            # The broker aborts it at transaction.timeout.ms; the next begin retries the abort.
            log.warning("transaction_abort_failed", reason=exc.message)

    def _call(
        self, name: str, method: Callable[..., Any], *args: Any, timeout_s: float | None = None
    ) -> Any:
        """``method(*args[, timeout_s])`` under the guard, librdkafka's errors translated."""
        try:
            with self._guard(name, timeout_s):
                return method(*args) if timeout_s is None else method(*args, timeout_s)
        except KafkaException as exc:
            error = translate(exc)
            if isinstance(error, BrokerUnavailable):
                # A timeout inside a transaction leaves it in an unknown state: abort it.
                raise AbortableKafkaError(error.message) from exc
            raise error from exc


__all__ = ["Guard", "TransactionalPublisher"]
