"""A broker outage while publishing the changelog makes the projection wait, not exit.

Fakes stand in for Kafka (the point is the retry path); the store is a real SQLite file.
"""

from pathlib import Path

from mediaflow.codec import AvroCodec
from mediaflow.errors import BrokerUnavailable
from mediaflow.processors.projection.consumer import ProjectionConsumer
from mediaflow.storage.projection import open_store
from tests.support.projection import detected


class Message:
    def __init__(self, value: bytes) -> None:
        self._value = value

    def error(self):
        return None

    def topic(self):
        return "media.events"

    def partition(self):
        return 0

    def offset(self):
        return 0

    def value(self):
        return self._value


class Consumer:
    def __init__(self, messages) -> None:
        self.messages = messages
        self.on_drained = lambda: None

    def subscribe(self, topics, on_assign):
        pass

    def consume(self, num_messages, timeout):
        if self.messages:
            batch, self.messages = self.messages, []
            return batch
        self.on_drained()
        return []

    def commit(self, offsets, asynchronous):
        pass

    def close(self):
        pass


class FlakyChangelog:
    """Refuses twice (broker away), then publishes."""

    def __init__(self) -> None:
        self.calls = 0

    def publish(self, batch) -> int:
        self.calls += 1
        if self.calls <= 2:
            raise BrokerUnavailable("media states not acknowledged: broker down")
        return len(batch)


def test_the_projection_waits_for_the_broker_to_publish_its_changelog(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("mediaflow.processors.projection.consumer.time.sleep", lambda _s: None)
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    changelog = FlakyChangelog()
    consumer = Consumer([Message(AvroCodec().encode(detected("m1")))])
    projection = ProjectionConsumer(
        consumer=consumer, store=store, codec=AvroCodec(), topic="media.events", changelog=changelog
    )
    consumer.on_drained = projection.stop

    projection.run()

    assert changelog.calls == 3
    assert store.get("m1") is not None
