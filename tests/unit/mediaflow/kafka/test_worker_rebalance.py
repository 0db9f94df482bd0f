"""A revoked partition hands over its finished work; a lost one hands over nothing."""

import asyncio

from tests.support.fake_kafka import FakeConsumer, FakeMessage, FakeProducer
from tests.support.toy_stage import ToyStage, produced_values, toy_worker, until


def partition_0_half_done():
    """Partition 0: offsets 0 and 1 finished, 2 still running; nothing committed yet."""
    consumer = FakeConsumer([FakeMessage(0, o) for o in range(3)] + [FakeMessage(1, 0)])
    producer = FakeProducer(offsets=consumer.offsets)
    stage = ToyStage(hold={"0:2", "1:0"})
    # Large, slow batches: nothing commits unless a rebalance makes it.
    worker = toy_worker(
        consumer, producer, stage, concurrency=4, batch_max_records=100, batch_max_interval_s=60
    )
    return consumer, producer, stage, worker


def test_on_revoke_commits_the_finished_prefix_and_drops_the_unfinished_record():
    consumer, producer, stage, worker = partition_0_half_done()

    async def scenario():
        task = asyncio.create_task(worker.run())
        await until(lambda: {"0:0", "0:1", "0:2"} <= set(stage.started))
        consumer.at_next_consume.append(lambda c: c.revoke([0]))
        await until(lambda: "0:2" in stage.cancelled)
        stage.release("1:0")
        worker.stop()
        await task

    asyncio.run(scenario())

    # What was finished is committed by this owner; the next one starts at offset 2.
    assert consumer.offsets[("in", 0)] == 2
    assert produced_values(producer).count(b"0:0") == 1
    assert produced_values(producer).count(b"0:1") == 1
    assert b"0:2" not in produced_values(producer)
    assert consumer.offsets[("in", 1)] == 1  # the partition kept is committed at shutdown


def test_on_lost_commits_nothing_of_the_lost_partition():
    consumer, producer, stage, worker = partition_0_half_done()

    async def scenario():
        task = asyncio.create_task(worker.run())
        await until(lambda: {"0:0", "0:1", "0:2"} <= set(stage.started))
        consumer.at_next_consume.append(lambda c: c.lose([0]))
        await until(lambda: "0:2" in stage.cancelled)
        stage.release("1:0")
        worker.stop()
        await task

    asyncio.run(scenario())

    # Someone else may own partition 0 already: none of its work is produced or committed.
    assert ("in", 0) not in consumer.offsets
    assert not [v for v in produced_values(producer) if v.startswith(b"0:")]
    assert consumer.offsets[("in", 1)] == 1
