"""An asyncio face over the confluent-kafka producer: await until the broker has it.

librdkafka is thread-based: ``produce`` only queues, and the delivery report
arrives through ``poll``. The records of one event-loop iteration are handed
to librdkafka together, and the event loop itself polls, every
:data:`POLL_INTERVAL_S` while records await their reports and every
:data:`IDLE_POLL_S` otherwise; each delivery callback resolves the future of
its request right there, so a handler awaits exactly "the record is on the
broker (acks=all)" or a :class:`~mediaflow.errors.BrokerUnavailable` it turns
into a 503. Polling on the loop rather than in a thread is deliberate: a poll
thread fights the loop for the GIL on every delivery report and wakes it
through a pipe.

Batching trades a little latency for a lot of CPU: each produce request costs
librdkafka's sender thread and the broker mostly thread wake-ups, so a few
records per request cost several times what full batches do. A batch goes
when ``batch_messages`` records wait or when the oldest has waited
``linger_ms``, whichever comes first: under load batches fill before the
linger ends; a client sending one webhook at a time waits out the linger.
(Figures: ``bench/README.md``.)

``message.timeout.ms`` is the delivery timeout: librdkafka reports every
record by then, delivered or failed, so no request waits longer than that.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque

from confluent_kafka import KafkaError, KafkaException, Producer

from mediaflow.config import KafkaSettings, Settings
from mediaflow.errors import BrokerUnavailable
from mediaflow.kafka import clients
from mediaflow.kafka.headers import Headers
from mediaflow.logging import get_logger

log = get_logger("mediaflow.webhook")

READY_CACHE_S = 1.0
"""How long a readiness answer is reused, so probes cannot flood the broker."""

POLL_INTERVAL_S = 0.001
"""Delivery reports are collected this often while records wait for them (the latency it adds).

asyncio's epoll selector waits in whole milliseconds, so a shorter interval
would not be kept on an otherwise idle loop.
"""

IDLE_POLL_S = 0.1
"""Polling interval with nothing in flight (librdkafka's error and log callbacks)."""

_NOT_CHECKED = "readiness not checked yet"


class AsyncProducer:
    """Send records and await their delivery reports.

    Example::

        producer = AsyncProducer(settings.kafka, delivery_timeout_s=10)
        await producer.send(topic, key, value, headers)   # on the broker now
        await producer.close()

    Args:
        settings: the cluster (and any librdkafka properties).
        delivery_timeout_s: ``message.timeout.ms``; keep it below the provider's own timeout.
        linger_ms: ``linger.ms``, the longest a record waits for its batch to
            fill. 0 sends at once, in batches of whatever one loop iteration
            produced; that answers a lone webhook soonest and costs the most CPU
            under load. Not a fraction of a millisecond: librdkafka then lingers
            about a whole one.
        batch_messages: ``batch.num.messages``: a batch this full goes at once,
            without waiting out ``linger_ms``.
        queue_max_messages: records librdkafka may hold before ``send`` refuses at once.
        client: an existing confluent-kafka producer to use instead (tests).
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        delivery_timeout_s: float,
        linger_ms: float = 1,
        batch_messages: int = 16,
        queue_max_messages: int = 100_000,
        client: Producer | None = None,
    ) -> None:
        self._delivery_timeout_s = delivery_timeout_s
        # Not `client or ...`: a producer with nothing queued has len() 0, so it is falsy.
        self._producer: Producer = (
            client
            if client is not None
            else clients.producer(
                settings,
                **{
                    "message.timeout.ms": int(delivery_timeout_s * 1000),
                    "queue.buffering.max.messages": queue_max_messages,
                    "socket.connection.setup.timeout.ms": max(1000, int(delivery_timeout_s * 1000)),
                    "linger.ms": linger_ms,
                    "batch.num.messages": batch_messages,
                    # Small batches on the request path: lz4 costs both ends less CPU than zstd.
                    "compression.type": "lz4",
                },
            )
        )
        self._outbox: list[tuple[str, bytes, bytes, Headers, asyncio.Future[None]]] = []
        self._waiting: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._tick: asyncio.TimerHandle | None = None
        self._tick_is_idle = True
        self._readiness: tuple[float, str | None] = (0.0, _NOT_CHECKED)

    @classmethod
    def from_settings(cls, settings: Settings) -> AsyncProducer:
        """The receiver's producer as ``settings`` configure it (delivery timeout, batching)."""
        return cls(
            settings.kafka,
            delivery_timeout_s=settings.webhook_delivery_timeout_s,
            linger_ms=settings.webhook_linger_ms,
            batch_messages=settings.webhook_batch_messages,
        )

    def send(self, topic: str, key: bytes, value: bytes, headers: Headers) -> asyncio.Future[None]:
        """Produce one record; the future it returns resolves once the broker acknowledged it.

        The record is queued at the call, not when the future is awaited. A
        future rather than a coroutine: the request's task awaits it directly,
        one coroutine frame fewer to create and resume on every webhook.

        Args:
            topic: the real (prefixed) topic name.
            key: the record key.
            value: the encoded record.
            headers: Kafka headers.

        Returns:
            A future that fails with :class:`~mediaflow.errors.BrokerUnavailable`
            when the local queue is full, the broker is unreachable, or the
            delivery timeout passed. The record may still land later; the caller
            must not claim it did.

        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if not self._outbox:
            loop.call_soon(self._produce_outbox, loop)
        self._outbox.append((topic, key, value, headers, future))
        return future

    def _produce_outbox(self, loop: asyncio.AbstractEventLoop) -> None:
        # The records of one loop iteration go to librdkafka together: one
        # produce() wakes its sender thread, and the calls that follow it do not
        # fight that thread for the partition's queue (one call at a time did,
        # at several times the cost of the call itself).
        outbox, self._outbox = self._outbox, []
        # librdkafka always reports by message.timeout.ms; the deadline only guards
        # against a report that never arrives (it must never hang a request).
        deadline = loop.time() + self._delivery_timeout_s + 2
        for topic, key, value, headers, future in outbox:
            if future.done():  # cancelled while waiting here: the client went away
                continue
            try:
                self._producer.produce(
                    topic,
                    value=value,
                    key=key,
                    headers=headers,
                    on_delivery=functools.partial(_settle, future),
                )
            except (BufferError, KafkaException) as exc:
                future.set_exception(clients.translate(exc))
                continue
            self._waiting.append((deadline, future))
        if self._tick_is_idle and self._waiting:
            self._schedule_poll(loop, POLL_INTERVAL_S)

    def _schedule_poll(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        if self._tick is not None:
            self._tick.cancel()
        self._tick_is_idle = delay >= IDLE_POLL_S
        self._tick = loop.call_later(delay, self._poll, loop)

    def _poll(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._producer.poll(0)  # runs the delivery callbacks, here on the loop's thread
        finally:
            # Even when a callback raised (a log handler whose stream broke): polling
            # must go on, or every waiting request would hang past its deadline.
            self._expire_overdue(loop.time())
            self._schedule_poll(loop, POLL_INTERVAL_S if self._waiting else IDLE_POLL_S)

    def _expire_overdue(self, now: float) -> None:
        # Every deadline is "sent + the same timeout", so the oldest is first: a
        # queue swept from its head replaces one timer per request.
        waiting = self._waiting
        while waiting and (waiting[0][1].done() or waiting[0][0] <= now):
            _deadline, future = waiting.popleft()
            if not future.done():
                future.set_exception(
                    BrokerUnavailable("no delivery report within the delivery timeout")
                )

    async def unready_reason(self, topic: str) -> str | None:
        """Why records cannot go to ``topic`` now, or ``None`` when they can (cached briefly).

        Asks the cluster for the topic's metadata: an unreachable broker and a
        topic that does not exist (topics are created by ``mediaflow topics
        apply``, never by a producer) both make the receiver unready. A change
        is logged, so a missing topic shows in the log at start, not only as
        webhooks answered 503 after the delivery timeout.
        """
        checked_at, reason = self._readiness
        if time.monotonic() - checked_at < READY_CACHE_S:
            return reason
        loop = asyncio.get_running_loop()
        now = await loop.run_in_executor(None, self._check_topic, topic)
        if now != reason:
            if now is None:
                log.info("producer_ready", topic=topic)
            else:
                log.warning("producer_not_ready", topic=topic, reason=now)
        self._readiness = (time.monotonic(), now)
        return now

    def _check_topic(self, topic: str) -> str | None:
        try:
            metadata = self._producer.list_topics(topic, timeout=min(2.0, self._delivery_timeout_s))
        except KafkaException:
            metadata = None
        if metadata is None or not metadata.brokers:
            return "the Kafka broker is not reachable"
        found = metadata.topics.get(topic)
        error = None if found is None else found.error
        if found is None or (
            error is not None and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
        ):
            return f"topic {topic} does not exist on the cluster; create it: mediaflow topics apply"
        if error is not None:
            return f"topic {topic} is not available: {error.str()}"
        return None

    async def close(self, timeout_s: float | None = None) -> int:
        """Wait for the outstanding delivery reports, then stop polling.

        Args:
            timeout_s: how long to wait for outstanding reports; the delivery
                timeout by default.

        Returns:
            How many records were still undelivered (0 after a clean flush).

        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self._delivery_timeout_s if timeout_s is None else timeout_s)
        while len(self._producer) and loop.time() < deadline:
            self._producer.poll(0)
            await asyncio.sleep(0.005)
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        self._producer.poll(0)
        remaining = len(self._producer)
        if remaining:
            log.error("producer_flush_incomplete", undelivered=remaining)
        return remaining


def _settle(future: asyncio.Future[None], error: KafkaError | None, _message: object) -> None:
    if future.done():  # the request gave up waiting already
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(clients.translate(KafkaException(error)))


__all__ = ["READY_CACHE_S", "AsyncProducer"]
