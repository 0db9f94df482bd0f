"""Whatever raises while a failure is handled, the record ends as a dead letter and the
partition keeps committing."""

import asyncio
from datetime import datetime

import pytest

from mediaflow.errors import InvalidPayload
from mediaflow.kafka import headers as h
from mediaflow.kafka.records import InRecord, OutRecord
from mediaflow.kafka.retry import RetryPolicy
from mediaflow.kafka.routing import FailureRouter
from mediaflow.kafka.worker import Worker, WorkerOptions
from mediaflow.logging import register_secrets
from tests.support.fake_kafka import FakeConsumer, FakeMessage, FakeProducer

RECORDS = 6
POISON = "0:2"
SECRET = "tok-s3cr3t-value"


class Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("no text for you")


class Weird(BaseException):
    """Not an Exception: slips past ``except Exception``."""


class Stage:
    """Echoes records; POISON fails. Each hook can be made to raise."""

    name = "toy"

    def __init__(self, *, handle_raises=None, failure_records_raises=None, media_id_raises=None):
        self.handle_raises = handle_raises
        self.failure_records_raises = failure_records_raises
        self.media_id_raises = media_id_raises
        self.seen: list[str] = []

    async def handle(self, record: InRecord):
        text = record.value.decode()
        self.seen.append(text)
        if text == POISON:
            raise self.handle_raises or InvalidPayload("poison")
        return [OutRecord("out", record.value, record.key)]

    def media_id_of(self, record):
        if self.media_id_raises:
            raise self.media_id_raises
        return None

    def failure_records(self, record, decision, now: datetime):
        if self.failure_records_raises:
            raise self.failure_records_raises
        return []


class RaisingRouter(FailureRouter):
    def route(self, record, decision, now, media_id=None):
        raise RuntimeError(f"router broke on {record.offset} with {SECRET}")


class RaisingPolicy(RetryPolicy):
    def decide(self, attempt, error, now, rng=None):
        raise OverflowError("date value out of range")


def run(stage, *, router=None, policy=None, transactional=True):
    producer = FakeProducer()
    consumer = FakeConsumer([FakeMessage(0, offset, key=b"k") for offset in range(RECORDS)])
    worker = Worker(
        consumer=consumer,
        producer=producer,
        stage=stage,
        topics=["in"],
        policy=policy or RetryPolicy(),
        router=router or FailureRouter(stage="toy", group_id="g", dlq_topic="dlq"),
        options=WorkerOptions(
            concurrency=2, batch_max_interval_s=0.01, transactional=transactional
        ),
    )
    committed = producer.offsets if transactional else consumer.offsets

    async def until_all_committed():
        task = asyncio.create_task(worker.run())
        for _ in range(500):
            if committed.get(("in", 0)) == RECORDS:
                break
            await asyncio.sleep(0.01)
        worker.stop()
        await task

    asyncio.run(asyncio.wait_for(until_all_committed(), timeout=30))
    return producer, committed


def the_dead_letter(producer):
    [dead] = [p for p in producer.produced if p[0] == "dlq"]
    return dead[1], h.to_dict(dead[3])


@pytest.mark.parametrize(
    ("stage", "router", "policy", "error_type"),
    [
        (Stage(), RaisingRouter("toy", "g", "dlq"), None, "RuntimeError"),
        (Stage(failure_records_raises=KeyError("info")), None, None, "KeyError"),
        (
            Stage(media_id_raises=UnicodeEncodeError("utf-8", "\ud800", 0, 1, "x")),
            None,
            None,
            "UnicodeEncodeError",
        ),
        (Stage(), None, RaisingPolicy(), "OverflowError"),
        (Stage(handle_raises=Weird("odd")), None, None, "Weird"),
    ],
    ids=["router", "failure_records", "media_id_of", "policy", "base_exception"],
)
def test_a_failure_while_handling_a_failure_dead_letters_the_record_as_internal(
    stage, router, policy, error_type
):
    producer, committed = run(stage, router=router, policy=policy)

    assert committed[("in", 0)] == RECORDS  # the partition kept committing past the poison
    outputs = [p[1] for p in producer.produced if p[0] == "out"]
    assert outputs == [f"0:{o}".encode() for o in range(RECORDS) if f"0:{o}" != POISON]
    value, headers = the_dead_letter(producer)
    assert value == POISON.encode()
    assert headers[h.DLQ_ERROR_KIND] == "internal"
    assert headers[h.DLQ_ORIGINAL_OFFSET] == "2"
    assert headers[h.DLQ_STAGE] == "toy"
    assert error_type in headers[h.DLQ_ERROR_MESSAGE]


def test_the_internal_dead_letter_message_is_scrubbed_and_ascii():
    register_secrets([SECRET])
    producer, _ = run(Stage(), router=RaisingRouter("toy", "g", "dlq"))
    _, headers = the_dead_letter(producer)
    assert SECRET not in headers[h.DLQ_ERROR_MESSAGE]
    assert "router broke on 2" in headers[h.DLQ_ERROR_MESSAGE]
    raw = dict(next(p for p in producer.produced if p[0] == "dlq")[3])
    assert all(v.isascii() for v in raw.values() if v)


def test_an_exception_that_cannot_be_printed_still_ends_as_a_dead_letter():
    producer, committed = run(Stage(failure_records_raises=Unprintable()), transactional=False)
    assert committed[("in", 0)] == RECORDS
    _, headers = the_dead_letter(producer)
    assert headers[h.DLQ_ERROR_KIND] == "internal"
    assert "Unprintable" in headers[h.DLQ_ERROR_MESSAGE]


class DescribingStage(Stage):
    """Describes every failure with an event naming its kind, as the downloader does."""

    def failure_records(self, record, decision, now: datetime):
        return [OutRecord("events", decision.kind.value.encode(), record.key)]


@pytest.mark.parametrize(
    ("router", "policy"),
    [(RaisingRouter("toy", "g", "dlq"), None), (None, RaisingPolicy())],
    ids=["router", "policy"],
)
def test_an_internal_dead_letter_is_described_by_the_stage_like_any_other(router, policy):
    # The projection and the platform learn of it: the media is not left "retrying".
    producer, _ = run(DescribingStage(), router=router, policy=policy)
    the_dead_letter(producer)
    assert [p[1] for p in producer.produced if p[0] == "events"] == [b"internal"]
