"""Partitions share the in-flight slots fairly (fakes: the order of starts is the point)."""

import asyncio
from datetime import datetime

from mediaflow.kafka.records import InRecord, OutRecord
from mediaflow.kafka.retry import RetryPolicy
from mediaflow.kafka.routing import FailureRouter
from mediaflow.kafka.worker import Worker, WorkerOptions


class Message:
    def __init__(self, partition: int, offset: int) -> None:
        self._partition, self._offset = partition, offset

    def error(self):
        return None

    def topic(self):
        return "in"

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def key(self):
        return None

    def value(self):
        return f"{self._partition}:{self._offset}".encode()

    def headers(self):
        return []

    def timestamp(self):
        return (0, 0)


class Consumer:
    """Partition 0 has a long backlog; partition 1 has one record behind it."""

    def __init__(self) -> None:
        self.pending = [Message(0, o) for o in range(20)] + [Message(1, 0)]

    def subscribe(self, topics, on_assign, on_revoke, on_lost):
        pass

    def consume(self, num_messages, timeout):
        batch, self.pending = self.pending, []
        return batch

    def consumer_group_metadata(self):
        return object()

    def pause(self, partitions):
        pass

    def resume(self, partitions):
        pass

    def close(self):
        pass


class Producer:
    def flush(self, timeout):
        return 0

    def produce(self, *args, **kwargs):
        pass

    def poll(self, timeout):
        return 0


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
    stage = RecordingStage()
    consumer = Consumer()
    worker = Worker(
        consumer=consumer,
        producer=Producer(),
        stage=stage,
        topics=["in"],
        policy=RetryPolicy(),
        router=FailureRouter(stage="recording", group_id="g", dlq_topic="dlq"),
        options=WorkerOptions(concurrency=4, transactional=False),
    )

    async def run_until_all_started():
        task = asyncio.create_task(worker.run())
        while len(stage.started) < 21:
            await asyncio.sleep(0.01)
        worker.stop()
        await task

    consumer.commit = lambda **kwargs: None
    asyncio.run(asyncio.wait_for(run_until_all_started(), timeout=30))
    assert "1:0" in stage.started[:4]
