"""A batch is published whole or aborted: no failure leaves a transaction open."""

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from mediaflow.errors import BrokerUnavailable
from mediaflow.kafka.clients import AbortableKafkaError, FatalKafkaError
from mediaflow.kafka.publish import TransactionalPublisher
from mediaflow.kafka.records import OutRecord
from tests.support.fake_kafka import FakeProducer

RECORDS = [OutRecord("out", f"v{i}".encode(), b"k") for i in range(4)]


def kafka_error(code=KafkaError._TIMED_OUT, **flags) -> KafkaException:
    return KafkaException(KafkaError(code, "broker said no", **flags))


class FailingProducer(FakeProducer):
    """Raises ``errors[call]`` (once each) on the ``at``-th call of that name."""

    def __init__(self, fail: str, error: BaseException, *, at: int = 1, times: int = 1) -> None:
        super().__init__()
        self.fail, self.error, self.at, self.times = fail, error, at, times
        self.seen = 0
        self.delivery_error: KafkaError | None = None
        self._callbacks = []

    def _maybe_fail(self, name: str) -> None:
        if name == self.fail:
            self.seen += 1
            if self.at <= self.seen < self.at + self.times:
                raise self.error

    def produce(self, topic, value=None, key=None, headers=None, on_delivery=None, **kw):
        self._maybe_fail("produce")
        super().produce(topic, value, key, headers)
        self._callbacks.append(on_delivery)

    def flush(self, timeout):
        if self.delivery_error is not None:
            for callback in self._callbacks:
                callback(self.delivery_error, None)
        self._callbacks = []
        return super().flush(timeout)

    def send_offsets_to_transaction(self, offsets, metadata, timeout):
        self._maybe_fail("send_offsets_to_transaction")
        super().send_offsets_to_transaction(offsets, metadata, timeout)

    def commit_transaction(self, timeout):
        self._maybe_fail("commit_transaction")
        super().commit_transaction(timeout)


def publish(producer, **kwargs):
    publisher = TransactionalPublisher(producer, timeout_s=0.3, commit_deadline_s=5, **kwargs)
    publisher.init_transactions()
    return publisher.publish(RECORDS, offsets=[TopicPartition("in", 0, 9)], group_metadata=object())


def test_a_batch_is_produced_with_its_offsets_and_committed():
    producer = FakeProducer()
    assert publish(producer) == 4
    assert [p[1] for p in producer.produced] == [r.value for r in RECORDS]
    assert producer.offsets == {("in", 0): 9}
    assert producer.calls[-2:] == ["flush", "commit_transaction"]


@pytest.mark.parametrize(
    ("fail", "error", "raised"),
    [
        ("produce", kafka_error(KafkaError.MSG_SIZE_TOO_LARGE), BrokerUnavailable),
        ("produce", kafka_error(KafkaError._STATE, txn_requires_abort=True), AbortableKafkaError),
        ("send_offsets_to_transaction", kafka_error(), AbortableKafkaError),
        ("commit_transaction", kafka_error(txn_requires_abort=True), AbortableKafkaError),
        ("produce", RuntimeError("a bug in a record"), RuntimeError),
    ],
    ids=["produce-refused", "produce-abortable", "send-offsets-timeout", "commit", "bug"],
)
def test_any_failure_mid_batch_aborts_the_transaction_and_raises(fail, error, raised):
    producer = FailingProducer(fail, error, at=2 if fail == "produce" else 1)
    with pytest.raises(raised):
        publish(producer)
    assert producer.calls[-1] == "abort_transaction"
    assert producer.produced == [] and producer.offsets == {}


def test_a_local_queue_that_stays_full_aborts_after_the_timeout():
    producer = FailingProducer("produce", BufferError("Local: Queue full"), at=2, times=10**9)
    with pytest.raises(AbortableKafkaError, match="queue stayed full"):
        publish(producer)
    assert producer.calls[-1] == "abort_transaction"


def test_a_queue_full_for_a_moment_is_waited_out():
    producer = FailingProducer("produce", BufferError("Local: Queue full"), at=2, times=2)
    assert publish(producer) == 4
    assert len(producer.produced) == 4


def test_a_delivery_error_aborts_the_batch():
    producer = FailingProducer("none", RuntimeError())
    producer.delivery_error = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "too large")
    with pytest.raises(AbortableKafkaError, match="delivery failed: too large"):
        publish(producer)
    assert producer.calls[-1] == "abort_transaction"
    assert producer.produced == []


def test_a_retriable_commit_error_is_retried_and_the_batch_committed_once():
    producer = FailingProducer("commit_transaction", kafka_error(retriable=True), times=2)
    assert publish(producer) == 4
    assert len(producer.produced) == 4
    assert "abort_transaction" not in producer.calls


def test_a_fenced_producer_is_fatal_and_not_aborted():
    producer = FailingProducer("commit_transaction", kafka_error(KafkaError._FENCED, fatal=True))
    with pytest.raises(FatalKafkaError):
        publish(producer)
    assert "abort_transaction" not in producer.calls


def test_without_transactions_records_are_produced_and_flushed():
    producer = FakeProducer()
    publisher = TransactionalPublisher(producer, transactional=False)
    publisher.init_transactions()
    assert publisher.publish(RECORDS) == 4
    assert "begin_transaction" not in producer.calls and "init_transactions" not in producer.calls
    assert len(producer.produced) == 4 and producer.calls[-1] == "flush"
