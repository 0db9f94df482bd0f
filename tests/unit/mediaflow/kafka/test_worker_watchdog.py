"""A wedged librdkafka call makes the worker give up instead of hanging forever."""

import asyncio
from datetime import datetime

from mediaflow.kafka.records import InRecord, OutRecord
from mediaflow.kafka.retry import RetryPolicy
from mediaflow.kafka.routing import FailureRouter
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
