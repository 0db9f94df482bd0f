"""A partition is paused while its head is not due or its queue is full, and resumed after."""

import asyncio
from datetime import UTC, datetime, timedelta

from mediaflow.kafka import headers as h
from tests.support.fake_kafka import FakeConsumer, FakeMessage, FakeProducer
from tests.support.toy_stage import ToyStage, toy_worker, until

NOW = datetime(2030, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def retry(partition: int, offset: int, due_in: timedelta) -> FakeMessage:
    return FakeMessage(
        partition, offset, headers=h.encode({h.ATTEMPT: 2, h.DUE_AT: h.millis(NOW + due_in)})
    )


def test_a_partition_whose_head_is_not_due_is_paused_and_resumed_when_due():
    consumer = FakeConsumer([retry(0, 0, timedelta(minutes=1)), FakeMessage(1, 0)])
    producer = FakeProducer(offsets=consumer.offsets)
    stage = ToyStage()
    clock = Clock()
    worker = toy_worker(consumer, producer, stage, clock=clock)

    async def scenario():
        task = asyncio.create_task(worker.run())
        await until(lambda: ("pause", 0) in consumer.calls and "1:0" in stage.started)
        assert "0:0" not in stage.started  # not before its due time...
        assert ("pause", 1) not in consumer.calls  # ...and it holds no other partition back
        clock.now = NOW + timedelta(minutes=1)
        await until(lambda: consumer.offsets.get(("in", 0)) == 1)
        worker.stop()
        await task

    asyncio.run(scenario())

    assert consumer.calls.index(("pause", 0)) < consumer.calls.index(("resume", 0))
    assert stage.started == ["1:0", "0:0"]


def test_a_partition_whose_queue_is_full_is_paused_until_it_drains():
    consumer = FakeConsumer([FakeMessage(0, o) for o in range(6)])
    producer = FakeProducer(offsets=consumer.offsets)
    stage = ToyStage(hold={"0:0"})
    worker = toy_worker(consumer, producer, stage, concurrency=1, max_queued_per_partition=2)

    async def scenario():
        task = asyncio.create_task(worker.run())
        await until(lambda: ("pause", 0) in consumer.calls)
        # Paused with the queue at its limit: the rest stays in Kafka, not in memory.
        assert consumer.positions[0] == 3  # 0:0 running, 0:1 and 0:2 queued
        stage.release("0:0")
        await until(lambda: consumer.offsets.get(("in", 0)) == 6)
        worker.stop()
        await task

    asyncio.run(scenario())

    assert ("resume", 0) in consumer.calls
    assert stage.started == [f"0:{o}" for o in range(6)]
