"""The shared worker loop on real Kafka, with a toy stage (the real stages have their own tests)."""

import asyncio
from collections.abc import Sequence
from datetime import datetime

import pytest

from mediaflow.errors import InvalidPayload, ProviderUnavailable
from mediaflow.kafka import headers as h
from mediaflow.kafka.clients import consumer, transactional_producer
from mediaflow.kafka.records import InRecord, OutRecord
from mediaflow.kafka.retry import Decision, RetryPolicy
from mediaflow.kafka.routing import FailureRouter
from mediaflow.kafka.topics import load_layout
from mediaflow.kafka.worker import Worker, WorkerOptions
from tests.support.kafka import produce, read_all

pytestmark = pytest.mark.integration


class ToyStage:
    """Upper-cases values; 'poison' is permanent, 'flaky' fails its first attempt."""

    name = "toy"

    def __init__(self, out_topic: str) -> None:
        self.out_topic = out_topic
        self.seen: list[tuple[str, int, datetime]] = []

    async def handle(self, record: InRecord) -> Sequence[OutRecord]:
        text = (record.value or b"").decode()
        self.seen.append((text, record.attempt, datetime.now().astimezone()))
        if text == "poison":
            raise InvalidPayload("poison record")
        if text == "flaky" and record.attempt == 1:
            raise ProviderUnavailable("first attempt fails")
        await asyncio.sleep(0)
        return [OutRecord(self.out_topic, text.upper().encode(), record.key)]

    def media_id_of(self, record: InRecord) -> str | None:
        return (record.key or b"").decode() or None

    def failure_records(
        self, record: InRecord, decision: Decision, now: datetime
    ) -> Sequence[OutRecord]:
        return []


def make_worker(settings, stage, *, concurrency=4, instance="a", router_type=FailureRouter):
    layout = load_layout(settings.kafka)
    group = f"{settings.kafka.topic_prefix}toy"
    return Worker(
        consumer=consumer(settings.kafka, group),
        producer=transactional_producer(settings.kafka, f"{group}-{instance}"),
        stage=stage,
        topics=[layout.download_requests, *[t.topic for t in layout.retry_tiers]],
        policy=RetryPolicy(layout.retry_tiers, jitter=0),
        router=router_type(stage="toy", group_id=group, dlq_topic=layout.dead_letters),
        options=WorkerOptions(
            concurrency=concurrency, batch_max_records=10, batch_max_interval_s=0.1
        ),
    )


def test_every_record_is_processed_once_poison_is_dead_lettered_and_the_partition_moves_on(
    settings,
):
    layout = load_layout(settings.kafka)
    out_topic = layout.media_events
    values = [f"v{i}" for i in range(40)]
    values.insert(5, "poison")
    produce(settings, layout.download_requests, [(b"k", v.encode()) for v in values])

    stage = ToyStage(out_topic)
    asyncio.run(make_worker(settings, stage).run(idle_exit_s=3))

    outputs = [m.value().decode() for m in read_all(settings, out_topic)]
    assert outputs == [v.upper() for v in values if v != "poison"]  # one partition key: order kept
    dead = read_all(settings, layout.dead_letters)
    assert len(dead) == 1 and dead[0].value() == b"poison"
    dlq_headers = h.to_dict(dead[0].headers())
    assert dlq_headers[h.DLQ_ERROR_KIND] == "invalid_payload"
    assert dlq_headers[h.DLQ_ORIGINAL_OFFSET] == "5"


def test_a_restarted_worker_resumes_after_the_committed_offsets(settings):
    layout = load_layout(settings.kafka)
    produce(settings, layout.download_requests, [(b"k", f"a{i}".encode()) for i in range(10)])
    asyncio.run(make_worker(settings, ToyStage(layout.media_events)).run(idle_exit_s=3))
    produce(settings, layout.download_requests, [(b"k", f"b{i}".encode()) for i in range(10)])
    second = ToyStage(layout.media_events)
    asyncio.run(make_worker(settings, second).run(idle_exit_s=3))

    assert [text for text, _, _ in second.seen] == [f"b{i}" for i in range(10)]
    assert len(read_all(settings, layout.media_events)) == 20


def test_a_transient_failure_is_retried_from_its_tier_not_before_its_due_time(settings):
    layout = load_layout(settings.kafka)
    produce(settings, layout.download_requests, [(b"k", b"flaky")])
    stage = ToyStage(layout.media_events)
    asyncio.run(make_worker(settings, stage).run(idle_exit_s=4))

    attempts = [(attempt, at) for text, attempt, at in stage.seen if text == "flaky"]
    assert [a for a, _ in attempts] == [1, 2]
    retry = read_all(settings, layout.retry_tiers[0].topic)
    assert len(retry) == 1
    due = h.from_millis(h.to_dict(retry[0].headers())[h.DUE_AT])
    assert attempts[1][1] >= due
    assert [m.value() for m in read_all(settings, layout.media_events)] == [b"FLAKY"]


class RouterThatBreaksOnPoison(FailureRouter):
    def route(self, record, decision, now, media_id=None):
        if record.value == b"poison":
            raise OverflowError("cannot convert float infinity to integer")
        return super().route(record, decision, now, media_id)


def test_a_router_that_raises_ends_the_record_as_an_internal_dead_letter_and_commits_on(
    settings,
):
    layout = load_layout(settings.kafka)
    values = ["a", "b", "poison", "c", "d"]
    produce(settings, layout.download_requests, [(b"k", v.encode()) for v in values])
    worker = make_worker(
        settings, ToyStage(layout.media_events), router_type=RouterThatBreaksOnPoison
    )
    asyncio.run(worker.run(idle_exit_s=3))

    assert [m.value() for m in read_all(settings, layout.media_events)] == [b"A", b"B", b"C", b"D"]
    [dead] = read_all(settings, layout.dead_letters)
    headers = h.to_dict(dead.headers())
    assert dead.value() == b"poison"
    assert headers[h.DLQ_ERROR_KIND] == "internal"
    assert "OverflowError" in headers[h.DLQ_ERROR_MESSAGE]
    # Everything was committed: a new worker of the group finds nothing left to do.
    again = ToyStage(layout.media_events)
    asyncio.run(make_worker(settings, again).run(idle_exit_s=2))
    assert again.seen == []


class RateLimitedStage(ToyStage):
    """'slow' is told to come back in an hour, the others fail once with no Retry-After."""

    async def handle(self, record: InRecord) -> Sequence[OutRecord]:
        text = (record.value or b"").decode()
        if record.attempt == 1:
            self.seen.append((text, record.attempt, datetime.now().astimezone()))
            retry_after = 3600 if text == "slow" else None
            raise ProviderUnavailable("429", retry_after=retry_after)
        return await super().handle(record)


def test_a_long_retry_after_does_not_hold_back_the_records_behind_it_in_its_tier(settings):
    layout = load_layout(settings.kafka)
    values = ["slow", "f0", "f1", "f2", "f3", "f4"]
    produce(settings, layout.download_requests, [(b"k", v.encode()) for v in values])
    stage = RateLimitedStage(layout.media_events)
    worker = make_worker(settings, stage)

    async def until_retried():
        task = asyncio.create_task(worker.run())
        for _ in range(600):  # a bound for the failure case only: an hour-long wait
            if {text for text, attempt, _ in stage.seen if attempt == 2} >= set(values):
                break
            await asyncio.sleep(0.1)
        worker.stop()
        await task

    asyncio.run(until_retried())

    second = [text for text, attempt, _ in stage.seen if attempt == 2]
    assert sorted(second[:5]) == ["f0", "f1", "f2", "f3", "f4"]
    assert second[5:] == ["slow"]  # capped at the longest tier instead of waiting an hour
    shortest, longest = layout.retry_tiers[0].topic, layout.retry_tiers[-1].topic
    assert sorted(m.value() for m in read_all(settings, shortest)) == [
        b"f0",
        b"f1",
        b"f2",
        b"f3",
        b"f4",
    ]
    assert [m.value() for m in read_all(settings, longest)] == [b"slow"]
