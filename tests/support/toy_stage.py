"""A toy stage for the worker loop's unit tests, and a worker wired to the fake clients.

Usage::

    consumer = FakeConsumer([FakeMessage(0, o) for o in range(3)])
    producer = FakeProducer(offsets=consumer.offsets)
    stage = ToyStage(hold={"0:1"})           # 0:1 waits until stage.release("0:1")
    worker = toy_worker(consumer, producer, stage, batch_max_records=10)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from mediaflow.kafka.records import InRecord, OutRecord
from mediaflow.kafka.retry import RetryPolicy
from mediaflow.kafka.routing import FailureRouter
from mediaflow.kafka.worker import Worker, WorkerOptions
from tests.support.fake_kafka import FakeConsumer, FakeProducer


class ToyStage:
    """Echoes each record's value to topic ``out``; the values in ``hold`` wait for release.

    Attributes:
        started: the value of every record started, in order (a re-read shows twice).
        cancelled: the values whose handling was cancelled.

    """

    name = "toy"

    def __init__(self, hold: Iterable[str] = ()) -> None:
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self._gates = {value: asyncio.Event() for value in hold}

    def release(self, value: str) -> None:
        """Let the held record ``value`` finish."""
        self._gates[value].set()

    async def handle(self, record: InRecord) -> list[OutRecord]:
        text = (record.value or b"").decode()
        self.started.append(text)
        try:
            if text in self._gates:
                await self._gates[text].wait()
        except asyncio.CancelledError:
            self.cancelled.append(text)
            raise
        return [OutRecord("out", record.value, record.key)]

    def media_id_of(self, record: InRecord) -> str | None:
        return None

    def failure_records(self, record: InRecord, decision: Any, now: datetime) -> list[OutRecord]:
        return []


def toy_worker(
    consumer: FakeConsumer,
    producer: FakeProducer,
    stage: ToyStage,
    *,
    clock: Callable[[], datetime] | None = None,
    **options: Any,
) -> Worker:
    """A worker on the fake clients; ``options`` are :class:`WorkerOptions` fields."""
    extra = {} if clock is None else {"clock": clock}
    return Worker(
        consumer=consumer,
        producer=producer,
        stage=stage,
        topics=["in"],
        policy=RetryPolicy(),
        router=FailureRouter(stage="toy", group_id="g", dlq_topic="dlq"),
        options=WorkerOptions(**{"batch_max_interval_s": 0.01, **options}),
        **extra,
    )


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait, letting the worker run, until ``condition()`` holds; fail after ``timeout``."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def produced_values(producer: FakeProducer, topic: str = "out") -> list[bytes]:
    """The values committed transactions produced to ``topic``, in order."""
    return [value for (t, value, _key, _headers) in producer.produced if t == topic]
