"""In-memory stand-ins for confluent-kafka clients, for unit tests of the worker loop.

Only for what a real broker cannot be made to do on demand (a call that never
returns, an exact order of starts, a rebalance or an error at a chosen
moment); everything else is tested on real Kafka.

What they keep of the real clients' contract:

* the consumer reads the partitions of topic ``in`` from in-memory logs,
  starting each newly assigned partition at the group's committed offset;
  it honours ``pause``, ``resume`` and ``seek``, and calls the rebalance
  callbacks from inside ``consume()``, as librdkafka does;
* the producer keeps what committed transactions produced; the offsets a
  transaction (or a plain ``commit``) commits go to the group's offsets,
  which ``Consumer.committed()`` reads back, like the broker;
* a fatal error leaves the producer broken: every later call raises it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

TOPIC = "in"
Offsets = dict[tuple[str, int], int]
"""The group's committed offsets: (topic, partition) -> next offset to read."""


class FakeMessage:
    """A consumed record of topic ``in``; its value is ``b"<partition>:<offset>"`` by default."""

    def __init__(
        self,
        partition: int,
        offset: int,
        *,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list | None = None,
        error: KafkaError | None = None,
    ) -> None:
        self._partition, self._offset = partition, offset
        self._value = value if value is not None else f"{partition}:{offset}".encode()
        self._key, self._headers = key, headers or []
        self._error = error

    @classmethod
    def failed(cls, error: KafkaError) -> FakeMessage:
        """The error event ``consume()`` hands out in place of a record."""
        return cls(-1, -1, error=error)

    def error(self):
        return self._error

    def topic(self):
        return TOPIC

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def key(self):
        return self._key

    def value(self):
        return self._value

    def headers(self):
        return self._headers

    def timestamp(self):
        return (0, 0)


class FakeConsumer:
    """Reads ``messages`` by partition; every partition holding one is assigned at first.

    Attributes:
        offsets: the group's committed offsets (share it with a :class:`FakeProducer`).
        calls: ``("pause" | "resume", partition)`` and ``("seek", partition, offset)``,
            in order.
        at_next_consume: actions run at the start of the next ``consume()``, where
            librdkafka runs rebalance callbacks (``consumer.revoke([0])``).
        errors: error events the next ``consume()`` hands out first.

    """

    def __init__(self, messages: Iterable[FakeMessage] = (), *, offsets: Offsets | None = None):
        self.logs: dict[int, list[FakeMessage]] = {}
        for message in messages:
            self.logs.setdefault(message.partition(), []).append(message)
        self.offsets: Offsets = {} if offsets is None else offsets
        self.positions: dict[int, int] = {}
        self.paused: set[int] = set()
        self.calls: list[tuple] = []
        self.at_next_consume: deque[Callable[[FakeConsumer], None]] = deque()
        self.errors: list[FakeMessage] = []
        self.closed = False
        self._callbacks: dict[str, Callable] = {}
        self._subscribed = False

    # -- the group ------------------------------------------------------------------------

    def subscribe(self, topics, on_assign, on_revoke, on_lost):
        self._callbacks = {"assign": on_assign, "revoke": on_revoke, "lost": on_lost}
        self._subscribed = True

    def assign_partitions(self, partitions: Iterable[int]) -> None:
        """Hand ``partitions`` to this member, at the group's committed offsets."""
        partitions = list(partitions)
        for p in partitions:
            self.positions[p] = max(0, self.offsets.get((TOPIC, p), 0))
        self._callbacks["assign"](self, _tps(partitions))

    def revoke(self, partitions: Iterable[int]) -> None:
        """Take ``partitions`` away in an orderly rebalance (``on_revoke``)."""
        self._take_away(list(partitions), "revoke")

    def lose(self, partitions: Iterable[int]) -> None:
        """Take ``partitions`` away after the session expired (``on_lost``)."""
        self._take_away(list(partitions), "lost")

    def _take_away(self, partitions: list[int], how: str) -> None:
        self._callbacks[how](self, _tps(partitions))
        for p in partitions:
            self.positions.pop(p, None)
            self.paused.discard(p)

    def consumer_group_metadata(self):
        return object()

    # -- reading --------------------------------------------------------------------------

    def consume(self, num_messages, timeout):
        if self._subscribed:
            self._subscribed = False
            self.assign_partitions(sorted(self.logs))
        while self.at_next_consume:
            self.at_next_consume.popleft()(self)
        batch, self.errors = list(self.errors), []
        for partition, position in sorted(self.positions.items()):
            if partition in self.paused:
                continue
            for message in self.logs.get(partition, []):
                if len(batch) >= num_messages:
                    break
                if message.offset() >= position:
                    batch.append(message)
                    self.positions[partition] = message.offset() + 1
        return batch

    def pause(self, partitions):
        for tp in partitions:
            self.paused.add(tp.partition)
            self.calls.append(("pause", tp.partition))

    def resume(self, partitions):
        for tp in partitions:
            self.paused.discard(tp.partition)
            self.calls.append(("resume", tp.partition))

    def seek(self, tp):
        offset = 0 if tp.offset == OFFSET_BEGINNING else tp.offset
        self.positions[tp.partition] = offset
        self.calls.append(("seek", tp.partition, offset))

    def committed(self, partitions, timeout=None):
        stored = self.offsets
        return [
            TopicPartition(tp.topic, tp.partition, stored.get((tp.topic, tp.partition), -1001))
            for tp in partitions
        ]

    def commit(self, offsets=(), **kwargs):
        for tp in offsets:
            self.offsets[(tp.topic, tp.partition)] = tp.offset

    def close(self):
        self.closed = True


class FakeProducer:
    """Keeps what committed transactions produced and the offsets they committed.

    ``send_offsets_to_transaction`` blocks until ``release`` when ``wedged``.
    :meth:`fail_next` makes a chosen call raise.
    """

    def __init__(self, *, wedged: bool = False, offsets: Offsets | None = None) -> None:
        self.wedged = wedged
        self.release = threading.Event()
        self.produced: list[tuple[str, bytes | None, object, list]] = []
        self.offsets: Offsets = {} if offsets is None else offsets
        self.calls: list[str] = []
        self._failures: dict[str, deque[KafkaError]] = {}
        self._fatal: KafkaError | None = None
        self._pending: list[tuple[str, bytes | None, object, list]] = []
        self._pending_offsets: Offsets = {}
        self._in_transaction = False

    def fail_next(self, call: str, error: KafkaError) -> None:
        """Make the next ``call`` raise ``KafkaException(error)``; a fatal error breaks it."""
        self._failures.setdefault(call, deque()).append(error)

    def _enter(self, call: str) -> None:
        self.calls.append(call)
        if self._fatal is not None:
            raise KafkaException(self._fatal)
        failures = self._failures.get(call)
        if failures:
            error = failures.popleft()
            if error.fatal():
                self._fatal = error
            raise KafkaException(error)

    def init_transactions(self, timeout):
        self._enter("init_transactions")

    def begin_transaction(self):
        self._enter("begin_transaction")
        self._pending, self._pending_offsets = [], {}
        self._in_transaction = True

    def produce(self, topic, value=None, key=None, headers=None, on_delivery=None, **kwargs):
        self._enter("produce")
        record = (topic, value, key, list(headers or []))
        (self._pending if self._in_transaction else self.produced).append(record)

    def poll(self, timeout):
        return 0

    def send_offsets_to_transaction(self, offsets, metadata, timeout):
        self._enter("send_offsets_to_transaction")
        if self.wedged:
            self.release.wait()
        for tp in offsets:
            self._pending_offsets[(tp.topic, tp.partition)] = tp.offset

    def commit_transaction(self, timeout):
        self._enter("commit_transaction")
        self.produced += self._pending
        self.offsets.update(self._pending_offsets)
        self._pending, self._pending_offsets = [], {}
        self._in_transaction = False

    def abort_transaction(self, timeout):
        self._enter("abort_transaction")
        self._pending, self._pending_offsets = [], {}
        self._in_transaction = False

    def flush(self, timeout):
        self._enter("flush")
        return 0


def _tps(partitions: Iterable[int]) -> list[TopicPartition]:
    return [TopicPartition(TOPIC, p) for p in partitions]
