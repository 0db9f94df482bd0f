"""In-memory stand-ins for confluent-kafka clients, for unit tests of the worker loop.

Only for what a real broker cannot be made to do on demand (a call that never
returns, an exact order of starts, a collaborator that raises); everything
else is tested on real Kafka.
"""

from __future__ import annotations

import threading


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
    ) -> None:
        self._partition, self._offset = partition, offset
        self._value = value if value is not None else f"{partition}:{offset}".encode()
        self._key, self._headers = key, headers or []

    def error(self):
        return None

    def topic(self):
        return "in"

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
    """Hands out ``messages`` once, announcing an (empty) assignment first."""

    def __init__(self, messages: list[FakeMessage]) -> None:
        self.pending = list(messages)
        self._on_assign = None
        self.committed: dict[tuple[str, int], int] = {}

    def subscribe(self, topics, on_assign, on_revoke, on_lost):
        self._on_assign = on_assign

    def consume(self, num_messages, timeout):
        if self._on_assign is not None:
            self._on_assign(self, [])
            self._on_assign = None
        batch, self.pending = self.pending, []
        return batch

    def consumer_group_metadata(self):
        return object()

    def commit(self, offsets=(), **kwargs):
        for tp in offsets:
            self.committed[(tp.topic, tp.partition)] = tp.offset

    def pause(self, partitions):
        pass

    def resume(self, partitions):
        pass

    def close(self):
        pass


class FakeProducer:
    """Keeps what a committed transaction produced and the input offsets it committed.

    ``send_offsets_to_transaction`` blocks until ``release`` when ``wedged``.
    """

    def __init__(self, *, wedged: bool = False) -> None:
        self.wedged = wedged
        self.release = threading.Event()
        self.produced: list[tuple[str, bytes | None, object, list]] = []
        self.committed: dict[tuple[str, int], int] = {}
        self.calls: list[str] = []
        self._pending: list[tuple[str, bytes | None, object, list]] = []
        self._pending_offsets: dict[tuple[str, int], int] = {}
        self._in_transaction = False

    def init_transactions(self, timeout):
        self.calls.append("init_transactions")

    def begin_transaction(self):
        self.calls.append("begin_transaction")
        self._pending, self._pending_offsets = [], {}
        self._in_transaction = True

    def produce(self, topic, value=None, key=None, headers=None, on_delivery=None, **kwargs):
        self.calls.append("produce")
        record = (topic, value, key, list(headers or []))
        (self._pending if self._in_transaction else self.produced).append(record)

    def poll(self, timeout):
        return 0

    def send_offsets_to_transaction(self, offsets, metadata, timeout):
        self.calls.append("send_offsets_to_transaction")
        if self.wedged:
            self.release.wait()
        for tp in offsets:
            self._pending_offsets[(tp.topic, tp.partition)] = tp.offset

    def commit_transaction(self, timeout):
        self.calls.append("commit_transaction")
        self.produced += self._pending
        self.committed.update(self._pending_offsets)
        self._pending, self._pending_offsets = [], {}
        self._in_transaction = False

    def abort_transaction(self, timeout):
        self.calls.append("abort_transaction")
        self._pending, self._pending_offsets = [], {}
        self._in_transaction = False

    def flush(self, timeout):
        self.calls.append("flush")
        return 0
