"""Partitions share the in-flight slots fairly."""

import asyncio
from datetime import datetime

from mediaflow.kafka.records import InRecord, OutRecord
from mediaflow.kafka.retry import RetryPolicy
from mediaflow.kafka.routing import FailureRouter
from mediaflow.kafka.worker import Worker, WorkerOptions
from tests.support.fake_kafka import FakeConsumer, FakeMessage, FakeProducer


class RecordingStage:
    name = "recording"

    def __init__(self) -> None:
        self.started: list[str] = []

    async def handle(self, record: InRecord):
        self.started.append(record.value.decode())
        await asyncio.sleep(0.01)
        return [OutRecord("out", record.value)]

    def media_id_of(self, record):
        return None

    def failure_records(self, record, decision, now: datetime):
        return []


def test_a_partition_with_a_backlog_does_not_take_every_slot():
    # Partition 0 has a long backlog; partition 1 has one record behind it.
    backlog = [FakeMessage(0, offset) for offset in range(20)] + [FakeMessage(1, 0)]
    stage = RecordingStage()
    worker = Worker(
        consumer=FakeConsumer(backlog),
        producer=FakeProducer(),
        stage=stage,
        topics=["in"],
        policy=RetryPolicy(),
        router=FailureRouter(stage="recording", group_id="g", dlq_topic="dlq"),
        options=WorkerOptions(concurrency=4, transactional=False),
    )

    async def run_until_all_started():
        task = asyncio.create_task(worker.run())
        while len(stage.started) < len(backlog):
            await asyncio.sleep(0.01)
        worker.stop()
        await task

    asyncio.run(asyncio.wait_for(run_until_all_started(), timeout=30))
    assert "1:0" in stage.started[:4]
