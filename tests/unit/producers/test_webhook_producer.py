"""The receiver's producer answers every request, even when a delivery report never comes."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from mediaflow.config import KafkaSettings, Settings
from mediaflow.errors import BrokerUnavailable
from mediaflow.producers.webhook import producer as producer_module
from mediaflow.producers.webhook.producer import AsyncProducer


class ReportingClient:
    """Stands in for librdkafka: queues records, reports them on the next poll."""

    def __init__(self, *, reports: bool) -> None:
        self.reports = reports
        self.queued: list[functools.partial[Any]] = []

    def produce(self, topic: str, **kwargs: Any) -> None:
        self.queued.append(kwargs["on_delivery"])

    def poll(self, _timeout: float) -> int:
        served, self.queued = (self.queued, []) if self.reports else ([], self.queued)
        for report in served:
            report(None, None)
        return len(served)

    def __len__(self) -> int:
        return len(self.queued)


async def test_send_returns_once_the_delivery_report_arrives() -> None:
    client = ReportingClient(reports=True)
    producer = AsyncProducer(KafkaSettings(), delivery_timeout_s=5, client=client)  # type: ignore[arg-type]
    await producer.send("t", b"k", b"v", [])
    assert client.queued == []
    assert await producer.close(timeout_s=0) == 0


async def test_a_report_that_never_comes_fails_the_request_after_the_deadline() -> None:
    client = ReportingClient(reports=False)
    producer = AsyncProducer(KafkaSettings(), delivery_timeout_s=0.05, client=client)  # type: ignore[arg-type]
    with pytest.raises(BrokerUnavailable, match="no delivery report"):
        await producer.send("t", b"k", b"v", [])
    assert await producer.close(timeout_s=0) == 1


class BrokenLogClient(ReportingClient):
    """A client whose first poll raises, as librdkafka does when a log callback fails."""

    def __init__(self) -> None:
        super().__init__(reports=True)
        self.failures = 1

    def poll(self, timeout: float) -> int:
        if self.failures:
            self.failures -= 1
            raise ValueError("I/O operation on closed file.")
        return super().poll(timeout)


async def test_a_poll_that_raises_does_not_stop_the_reports() -> None:
    client = BrokenLogClient()
    producer = AsyncProducer(KafkaSettings(), delivery_timeout_s=5, client=client)  # type: ignore[arg-type]
    await producer.send("t", b"k", b"v", [])  # answered by the poll after the failed one
    assert client.failures == 0
    assert await producer.close(timeout_s=0) == 0


def test_the_batching_settings_reach_librdkafka(monkeypatch: pytest.MonkeyPatch) -> None:
    given: dict[str, Any] = {}

    def producer(_settings: KafkaSettings, **overrides: Any) -> ReportingClient:
        given.update(overrides)
        return ReportingClient(reports=True)

    monkeypatch.setattr(producer_module.clients, "producer", producer)
    AsyncProducer.from_settings(Settings(webhook_linger_ms=7, webhook_batch_messages=3))
    assert given["linger.ms"] == 7
    assert given["batch.num.messages"] == 3
