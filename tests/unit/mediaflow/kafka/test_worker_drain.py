"""Drain mode: the loop returns on its own once everything is committed and nothing arrives."""

import asyncio

from tests.support.fake_kafka import FakeConsumer, FakeMessage, FakeProducer
from tests.support.toy_stage import ToyStage, produced_values, toy_worker

RECORDS = 5


def test_drain_mode_returns_once_idle_with_every_record_committed():
    consumer = FakeConsumer([FakeMessage(p, o) for p in (0, 1) for o in range(RECORDS)])
    producer = FakeProducer(offsets=consumer.offsets)
    worker = toy_worker(consumer, producer, ToyStage(), concurrency=3)

    asyncio.run(asyncio.wait_for(worker.run(idle_exit_s=0.1), timeout=10))  # no stop() call

    assert consumer.offsets == {("in", 0): RECORDS, ("in", 1): RECORDS}
    assert len(produced_values(producer)) == 2 * RECORDS
    assert worker.committed_records == 2 * RECORDS
    assert consumer.closed


def test_drain_mode_waits_for_a_slow_record_however_long_the_idle_time():
    consumer = FakeConsumer([FakeMessage(0, 0), FakeMessage(0, 1)])
    producer = FakeProducer(offsets=consumer.offsets)
    stage = ToyStage(hold={"0:1"})
    worker = toy_worker(consumer, producer, stage)

    async def scenario():
        task = asyncio.create_task(worker.run(idle_exit_s=0.05))
        await asyncio.sleep(0.3)  # six idle periods with 0:1 still running
        assert not task.done()
        stage.release("0:1")
        await task

    asyncio.run(asyncio.wait_for(scenario(), timeout=10))
    assert consumer.offsets == {("in", 0): 2}
