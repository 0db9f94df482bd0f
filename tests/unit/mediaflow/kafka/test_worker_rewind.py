"""An aborted transaction drops the batch's progress and reads its records again."""

import asyncio

from confluent_kafka import KafkaError, KafkaException

from tests.support.fake_kafka import FakeConsumer, FakeMessage, FakeProducer
from tests.support.toy_stage import ToyStage, produced_values, toy_worker, until

RECORDS = 4


def test_an_abortable_commit_error_aborts_rewinds_and_processes_the_records_again():
    consumer = FakeConsumer([FakeMessage(0, offset) for offset in range(RECORDS)])
    producer = FakeProducer(offsets=consumer.offsets)
    producer.fail_next(
        "commit_transaction",
        KafkaError(KafkaError._TIMED_OUT, "coordinator away", txn_requires_abort=True),
    )
    stage = ToyStage()
    worker = toy_worker(consumer, producer, stage, batch_max_records=RECORDS)

    async def scenario():
        task = asyncio.create_task(worker.run())
        await until(lambda: consumer.offsets.get(("in", 0)) == RECORDS)
        worker.stop()
        await task

    asyncio.run(scenario())

    assert "abort_transaction" in producer.calls
    assert ("seek", 0, 0) in consumer.calls  # back to the committed offset (none yet: the start)
    every = [f"0:{o}" for o in range(RECORDS)]
    assert stage.started == every + every  # read and handled again after the abort
    # The aborted batch left nothing behind: each output once, from the second pass.
    assert produced_values(producer) == [v.encode() for v in every]


def test_a_rewind_resumes_at_the_last_committed_offset_not_the_start():
    consumer = FakeConsumer([FakeMessage(0, offset) for offset in range(RECORDS)])
    producer = FakeProducer(offsets=consumer.offsets)
    stage = ToyStage(hold={"0:2"})
    worker = toy_worker(consumer, producer, stage, batch_max_records=2)

    async def scenario():
        task = asyncio.create_task(worker.run())
        await until(lambda: consumer.offsets.get(("in", 0)) == 2)  # 0:0 and 0:1 committed
        producer.fail_next(
            "commit_transaction", KafkaError(KafkaError._STATE, "abort", txn_requires_abort=True)
        )
        stage.release("0:2")
        await until(lambda: consumer.offsets.get(("in", 0)) == RECORDS)
        worker.stop()
        await task

    asyncio.run(scenario())

    assert ("seek", 0, 2) in consumer.calls
    assert stage.started == ["0:0", "0:1", "0:2", "0:3", "0:2", "0:3"]
    assert produced_values(producer) == [f"0:{o}".encode() for o in range(RECORDS)]


class CoordinatorMoving(FakeConsumer):
    """``committed()`` answers NOT_COORDINATOR ``times`` times (a broker of the group died)."""

    def __init__(self, messages, times: int) -> None:
        super().__init__(messages)
        self.refusals = times

    def committed(self, partitions, timeout=None):
        if self.refusals:
            self.refusals -= 1
            raise KafkaException(KafkaError(KafkaError.NOT_COORDINATOR, "coordinator moved"))
        return super().committed(partitions, timeout)


def test_a_rewind_waits_for_the_group_coordinator_to_move_instead_of_ending_the_stage():
    consumer = CoordinatorMoving([FakeMessage(0, offset) for offset in range(RECORDS)], times=2)
    producer = FakeProducer(offsets=consumer.offsets)
    producer.fail_next(
        "commit_transaction",
        KafkaError(KafkaError._TIMED_OUT, "coordinator away", txn_requires_abort=True),
    )
    stage = ToyStage()
    worker = toy_worker(consumer, producer, stage, batch_max_records=RECORDS)

    async def scenario():
        task = asyncio.create_task(worker.run())
        await until(lambda: consumer.offsets.get(("in", 0)) == RECORDS or task.done())
        worker.stop()
        await task  # raised NOT_COORDINATOR before: the stage ended and was restarted

    asyncio.run(scenario())

    assert consumer.refusals == 0
    assert consumer.offsets[("in", 0)] == RECORDS
