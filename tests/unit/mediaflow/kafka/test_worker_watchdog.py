"""A wedged librdkafka call makes the worker give up instead of hanging forever."""

import asyncio
import threading
from datetime import datetime

from confluent_kafka import TopicPartition

from mediaflow.kafka.publish import TransactionalPublisher
from mediaflow.kafka.records import InRecord, OutRecord
from mediaflow.kafka.retry import RetryPolicy
from mediaflow.kafka.routing import FailureRouter
from mediaflow.kafka.watchdog import Watchdog
from mediaflow.kafka.worker import Worker, WorkerOptions
from tests.support.fake_kafka import FakeConsumer, FakeMessage, FakeProducer


class EchoStage:
    name = "echo"

    async def handle(self, record: InRecord):
        return [OutRecord("out", record.value, record.key)]

    def media_id_of(self, record):
        return None

    def failure_records(self, record, decision, now: datetime):
        return []


def test_a_transaction_call_past_its_deadline_triggers_the_wedged_exit():
    producer = FakeProducer(wedged=True)
    wedged: list[str] = []

    def on_wedged(call: str) -> None:
        wedged.append(call)
        worker.stop()
        producer.release.set()  # a real process would exit here instead

    worker = Worker(
        consumer=FakeConsumer([FakeMessage(0, 0)]),
        producer=producer,
        stage=EchoStage(),
        topics=["in"],
        policy=RetryPolicy(),
        router=FailureRouter(stage="echo", group_id="g", dlq_topic="dlq"),
        options=WorkerOptions(batch_max_records=1, call_deadline_s=0.3),
        on_wedged=on_wedged,
    )
    asyncio.run(asyncio.wait_for(worker.run(), timeout=30))
    assert wedged == ["send_offsets_to_transaction"]


def test_a_call_wedged_past_its_own_timeout_is_reported_long_before_the_deadline():
    # librdkafka's send_offsets_to_transaction can outlive its timeout for good after
    # a broker restart: the stage must give up after that timeout plus a grace, not
    # after the much longer deadline meant for calls that have no timeout.
    producer = FakeProducer(wedged=True)
    wedged = threading.Event()
    reported: list[str] = []

    def on_wedged(call: str) -> None:
        reported.append(call)
        wedged.set()
        producer.release.set()

    watchdog = Watchdog(600.0, on_wedged, grace_s=0.1)
    publisher = TransactionalPublisher(producer, guard=watchdog.guard, timeout_s=0.1)
    worker_thread = threading.Thread(
        target=publisher.publish,
        args=([OutRecord("out", b"v", b"k")],),
        kwargs={"offsets": [TopicPartition("in", 0, 1)], "group_metadata": object()},
        daemon=True,
    )
    worker_thread.start()

    assert wedged.wait(timeout=30), "the wedged call was not reported"
    assert reported == ["send_offsets_to_transaction"]
    worker_thread.join(timeout=30)
