"""Produce and read records on the real local Kafka, independently of the code under test."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from mediaflow.config import Settings
from mediaflow.kafka.clients import PRODUCER_DEFAULTS


def produce(
    settings: Settings,
    topic: str,
    records: Iterable[
        tuple[bytes | str | None, bytes | None] | tuple[bytes | str | None, bytes | None, list]
    ],
) -> int:
    """Produce ``(key, value[, headers])`` records and wait until all are acknowledged."""
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "acks": "all",
            "message.max.bytes": PRODUCER_DEFAULTS["message.max.bytes"],
        }
    )
    errors: list = []
    count = 0
    for record in records:
        key, value, *rest = record
        producer.produce(
            topic,
            key=key,
            value=value,
            headers=rest[0] if rest else None,
            on_delivery=lambda err, _m: errors.append(err) if err else None,
        )
        count += 1
        producer.poll(0)
    assert producer.flush(30) == 0, "records still queued after 30 s"
    assert not errors, f"delivery failed: {errors[:3]}"
    return count


def read_all(
    settings: Settings, topic: str, *, timeout: float = 10.0, committed_only: bool = True
) -> list[Message]:
    """Read every record currently on ``topic`` (all partitions, from the beginning).

    Stops when each partition reached its high watermark (read_committed: the
    last stable offset), or after ``timeout`` seconds.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"test-reader-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed" if committed_only else "read_uncommitted",
            "enable.partition.eof": True,
        }
    )
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = list(metadata.topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    remaining = set(partitions)
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    while remaining and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None:
            continue
        if message.error():
            if message.error().code() == message.error()._PARTITION_EOF:
                remaining.discard(message.partition())
            continue
        out.append(message)
    consumer.close()
    return out


def wait_for(settings: Settings, topic: str, count: int, *, timeout: float = 60.0) -> list[Message]:
    """Read ``topic`` repeatedly until it holds at least ``count`` records; return them."""
    deadline = time.monotonic() + timeout
    records: list[Message] = []
    while time.monotonic() < deadline:
        records = read_all(settings, topic, timeout=5)
        if len(records) >= count:
            return records
        time.sleep(0.5)
    raise AssertionError(f"{topic} has {len(records)} records after {timeout} s, expected {count}")
