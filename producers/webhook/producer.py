"""An asyncio face over the confluent-kafka producer: await until the broker has it.

librdkafka is thread-based: ``produce`` only queues, and the delivery report
arrives through ``poll``. A daemon thread polls; each delivery callback
resolves the future of its request on the event loop, so a handler awaits
exactly "the record is on the broker (acks=all)" or a
:class:`~mediaflow.errors.BrokerUnavailable` it turns into a 503.

``message.timeout.ms`` is the delivery timeout: librdkafka reports every
record by then, delivered or failed, so no request waits longer than that.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from mediaflow.config import KafkaSettings
from mediaflow.errors import BrokerUnavailable
from mediaflow.kafka import clients
from mediaflow.kafka.headers import Headers
from mediaflow.logging import get_logger

log = get_logger("mediaflow.webhook")

READY_CACHE_S = 1.0
"""How long a readiness answer is reused, so probes cannot flood the broker."""


class AsyncProducer:
    """Send records and await their delivery reports.

    Example::

        producer = AsyncProducer(settings.kafka, delivery_timeout_s=10)
        await producer.send(topic, key, value, headers)   # on the broker now
        await producer.close()
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        delivery_timeout_s: float,
        queue_max_messages: int = 100_000,
    ) -> None:
        self._delivery_timeout_s = delivery_timeout_s
        self._producer: Producer = clients.producer(
            settings,
            **{
                "message.timeout.ms": int(delivery_timeout_s * 1000),
                "queue.buffering.max.messages": queue_max_messages,
                "socket.connection.setup.timeout.ms": max(1000, int(delivery_timeout_s * 1000)),
                # Every request waits for its own record: batches form from
                # concurrent requests anyway, so do not hold them back.
                "linger.ms": 0.5,
            },
        )
        self._stopping = threading.Event()
        self._reports: list[tuple[asyncio.Future[None], KafkaError | None]] = []
        self._reports_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poller = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._poller.start()
        self._ready: tuple[float, bool] = (0.0, False)

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.1)
            self._hand_over_reports()

    def _report(self, future: asyncio.Future[None], error: KafkaError | None) -> None:
        # Runs inside poll()/flush(): only collect; the event loop is woken once per batch.
        with self._reports_lock:
            self._reports.append((future, error))

    def _hand_over_reports(self) -> None:
        with self._reports_lock:
            reports, self._reports = self._reports, []
        if reports and self._loop is not None:
            # One wake-up of the event loop per poll, not one per record.
            self._loop.call_soon_threadsafe(_settle_all, reports)

    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers) -> None:
        """Produce one record and return once the broker acknowledged it.

        Args:
            topic: the real (prefixed) topic name.
            key: the record key.
            value: the encoded record.
            headers: Kafka headers.

        Raises:
            BrokerUnavailable: the local queue is full, the broker is unreachable,
                or the delivery timeout passed. The record may still land later;
                the caller must not claim it did.

        """
        loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        report = self._report
        try:
            self._producer.produce(
                topic,
                value=value,
                key=key,
                headers=headers,
                on_delivery=lambda error, _message: report(future, error),
            )
        except (BufferError, KafkaException) as exc:
            raise clients.translate(exc) from exc
        # librdkafka always reports by message.timeout.ms; the margin only guards
        # against a report that never arrives (it must never hang a request).
        try:
            async with asyncio.timeout(self._delivery_timeout_s + 2):
                await future
        except TimeoutError as exc:
            raise BrokerUnavailable("no delivery report within the delivery timeout") from exc

    async def ready(self) -> bool:
        """Whether the broker answers a metadata request right now (cached briefly)."""
        checked_at, ready = self._ready
        if time.monotonic() - checked_at < READY_CACHE_S:
            return ready
        loop = asyncio.get_running_loop()
        ready = await loop.run_in_executor(None, self._reaches_broker)
        self._ready = (time.monotonic(), ready)
        return ready

    def _reaches_broker(self) -> bool:
        try:
            metadata = self._producer.list_topics(timeout=min(2.0, self._delivery_timeout_s))
        except KafkaException:
            return False
        return bool(metadata.brokers)

    async def close(self, timeout_s: float | None = None) -> int:
        """Flush queued records, then stop the poll thread.

        Args:
            timeout_s: how long to wait for outstanding reports; the delivery
                timeout by default.

        Returns:
            How many records were still undelivered (0 after a clean flush).

        """
        loop = asyncio.get_running_loop()
        wait = self._delivery_timeout_s if timeout_s is None else timeout_s
        remaining: int = await loop.run_in_executor(None, self._producer.flush, wait)
        self._stopping.set()
        await loop.run_in_executor(None, self._poller.join)
        self._hand_over_reports()  # reports that arrived during the final flush
        if remaining:
            log.error("producer_flush_incomplete", undelivered=remaining)
        return remaining


def _settle_all(reports: list[tuple[asyncio.Future[Any], KafkaError | None]]) -> None:
    for future, error in reports:
        if future.done():  # the request gave up waiting already
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(clients.translate(KafkaException(error)))


__all__ = ["READY_CACHE_S", "AsyncProducer"]
