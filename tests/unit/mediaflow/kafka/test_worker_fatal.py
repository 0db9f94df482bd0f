"""A fatal Kafka error stops the loop with FatalKafkaError, whatever shutdown runs into."""

import asyncio

import pytest
from confluent_kafka import KafkaError

from mediaflow.kafka.clients import FatalKafkaError
from tests.support.fake_kafka import FakeConsumer, FakeMessage, FakeProducer
from tests.support.toy_stage import ToyStage, produced_values, toy_worker

RECORDS = 3


def run_until_fatal(consumer, producer, stage):
    worker = toy_worker(consumer, producer, stage, batch_max_records=RECORDS)
    with pytest.raises(FatalKafkaError) as raised:
        asyncio.run(asyncio.wait_for(worker.run(), timeout=10))
    return raised.value


def records():
    return [FakeMessage(0, offset) for offset in range(RECORDS)]


def test_a_fenced_producer_stops_the_loop_without_committing_or_aborting():
    consumer = FakeConsumer(records())
    producer = FakeProducer(offsets=consumer.offsets)
    producer.fail_next("commit_transaction", KafkaError(KafkaError.PRODUCER_FENCED, fatal=True))

    error = run_until_fatal(consumer, producer, ToyStage())

    assert error.fenced
    assert consumer.offsets == {} and produced_values(producer) == []
    assert "abort_transaction" not in producer.calls  # a fenced producer cannot abort
    assert consumer.closed


def test_a_fenced_static_member_stops_the_loop_as_fenced():
    # librdkafka reports it as a _FATAL consume event (fatal() unset), whose
    # only cause for a classic-protocol consumer is FENCED_INSTANCE_ID.
    consumer = FakeConsumer(records())
    consumer.errors.append(FakeMessage.failed(KafkaError(KafkaError._FATAL, "fenced")))
    producer = FakeProducer(offsets=consumer.offsets)
    stage = ToyStage()

    error = run_until_fatal(consumer, producer, stage)

    assert error.fenced
    assert stage.started == []
    assert consumer.offsets == {}


def test_a_shutdown_step_failing_after_a_fatal_error_does_not_hide_it():
    # A chaos run: after a broker outage librdkafka answered INVALID_TXN_STATE
    # (fatal) to the abort, then the producer's final flush raised that error again.
    consumer = FakeConsumer(records())
    producer = FakeProducer(offsets=consumer.offsets)
    producer.fail_next(
        "commit_transaction", KafkaError(KafkaError._TIMED_OUT, "away", txn_requires_abort=True)
    )
    producer.fail_next(
        "abort_transaction",
        KafkaError(KafkaError.INVALID_TXN_STATE, "Failed to end transaction", fatal=True),
    )

    error = run_until_fatal(consumer, producer, ToyStage())

    assert not error.fenced
    assert "INVALID_TXN_STATE" in error.message
    assert consumer.offsets == {} and produced_values(producer) == []
    assert consumer.closed  # the group was still left


def test_a_fenced_final_commit_after_a_clean_stop_still_ends_as_fatal():
    consumer = FakeConsumer(records())
    producer = FakeProducer(offsets=consumer.offsets)
    producer.fail_next("commit_transaction", KafkaError(KafkaError.PRODUCER_FENCED, fatal=True))
    stage = ToyStage()
    # Nothing commits before the stop: the final commit is the first.
    worker = toy_worker(consumer, producer, stage, batch_max_records=100, batch_max_interval_s=60)

    async def scenario():
        task = asyncio.create_task(worker.run())
        while len(stage.started) < RECORDS:
            await asyncio.sleep(0.01)
        worker.stop()
        await task

    with pytest.raises(FatalKafkaError) as raised:
        asyncio.run(asyncio.wait_for(scenario(), timeout=10))
    assert raised.value.fenced
    assert consumer.offsets == {} and consumer.closed
