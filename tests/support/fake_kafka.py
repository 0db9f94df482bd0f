"""In-memory stand-ins for confluent-kafka clients, for unit tests of the worker loop.

Only for what a real broker cannot be made to do on demand (a call that never
returns, an exact order of starts); everything else is tested on real Kafka.
"""

from __future__ import annotations

import threading


class FakeMessage:
    """A consumed record of topic ``in``."""

    def __init__(self, partition: int, offset: int) -> None:
        self._partition, self._offset = partition, offset

    def error(self):
        return None

    def topic(self):
        return "in"

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def key(self):
        return None

    def value(self):
        return f"{self._partition}:{self._offset}".encode()

    def headers(self):
        return []

    def timestamp(self):
        return (0, 0)


class FakeConsumer:
    """Hands out ``messages`` once, announcing an (empty) assignment first."""

    def __init__(self, messages: list[FakeMessage]) -> None:
        self.pending = list(messages)
        self._on_assign = None

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

    def commit(self, **kwargs):
        pass

    def pause(self, partitions):
        pass

    def resume(self, partitions):
        pass

    def close(self):
        pass


class FakeProducer:
    """Accepts everything; ``send_offsets_to_transaction`` blocks until ``release`` when wedged."""

    def __init__(self, *, wedged: bool = False) -> None:
        self.wedged = wedged
        self.release = threading.Event()

    def init_transactions(self, timeout):
        pass

    def begin_transaction(self):
        pass

    def produce(self, *args, **kwargs):
        pass

    def poll(self, timeout):
        return 0

    def send_offsets_to_transaction(self, offsets, metadata, timeout):
        if self.wedged:
            self.release.wait()

    def commit_transaction(self, timeout):
        pass

    def abort_transaction(self, timeout):
        pass

    def flush(self, timeout):
        return 0
