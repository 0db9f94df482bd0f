"""Replay: move a consumer group's committed offsets back (or forward) on one topic.

The stage then re-reads from there. Replaying is safe for the pipeline
because every stage is idempotent (the downloader never writes a second
object for a media it stored; the projection applies each event once).

Offsets may only be altered while the group has no active members (Kafka
refuses otherwise, and a running member would overwrite them at its next
commit), so :func:`active_members` is checked first and a person stops the
stage, or forces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from mediaflow.config import KafkaSettings
from mediaflow.errors import BrokerUnavailable, UsageError
from mediaflow.kafka import headers as h
from mediaflow.kafka.scan import partitions_of, throwaway_consumer, watermarks

TIMEOUT_S = 15


@dataclass(frozen=True, slots=True)
class ReplayTarget:
    """Where to move to: exactly one of the three is set."""

    from_timestamp: datetime | None = None
    from_offset: int | None = None
    to_earliest: bool = False

    def __post_init__(self) -> None:
        chosen = sum(
            (self.from_timestamp is not None, self.from_offset is not None, self.to_earliest)
        )
        if chosen != 1:
            raise UsageError("choose exactly one of --from-timestamp, --from-offset, --to-earliest")


@dataclass(frozen=True, slots=True)
class PartitionPlan:
    """One partition's move: committed ``current`` (``None``: never committed) -> ``new``."""

    topic: str
    partition: int
    current: int | None
    new: int
    low: int
    high: int

    @property
    def to_reprocess(self) -> int:
        """Records the group will read (again) from ``new`` to the end."""
        return max(0, self.high - self.new)

    @property
    def changes(self) -> bool:
        """Whether the committed offset moves at all."""
        return self.current != self.new

    def row(self) -> dict[str, Any]:
        """The line printed for this partition."""
        return {
            "partition": self.partition,
            "current": self.current,
            "new": self.new,
            "low": self.low,
            "high": self.high,
            "to_reprocess": self.to_reprocess,
        }


def plan_partition(
    topic: str, partition: int, *, current: int | None, low: int, high: int, wanted: int | None
) -> PartitionPlan:
    """Plan one partition (pure).

    Args:
        topic: the topic.
        partition: the partition number.
        current: the group's committed offset, ``None`` when it never committed.
        low: the partition's low watermark (older records were deleted).
        high: the high watermark (the next offset to be written).
        wanted: the offset asked for; ``None`` means "after the last record"
            (a timestamp later than every record). Clamped into ``[low, high]``.
    """
    new = high if wanted is None else min(max(wanted, low), high)
    return PartitionPlan(topic, partition, current, new, low, high)


def compute_plan(
    settings: KafkaSettings,
    admin: AdminClient,
    group: str,
    topic: str,
    target: ReplayTarget,
    partition: int | None = None,
) -> list[PartitionPlan]:
    """Read watermarks, committed offsets and (for a timestamp) the offsets to move to.

    Raises:
        ConfigError: the topic or the partition does not exist.
        BrokerUnavailable: Kafka did not answer.
    """
    consumer = throwaway_consumer(settings)
    try:
        partitions = selected_partitions(consumer, topic, partition)
        committed = committed_offsets(admin, group, topic, partitions)
        wanted = target_offsets(consumer, topic, partitions, target)
        plans = []
        for p in partitions:
            low, high = watermarks(consumer, topic, p)
            current = committed.get(p)
            plans.append(
                plan_partition(topic, p, current=current, low=low, high=high, wanted=wanted[p])
            )
        return plans
    finally:
        consumer.close()


def selected_partitions(consumer: Consumer, topic: str, partition: int | None) -> list[int]:
    """``[partition]``, or every partition of ``topic`` when it is ``None``.

    Raises:
        UsageError: ``partition`` does not exist.
        ConfigError: the topic does not exist.
        BrokerUnavailable: Kafka did not answer.
    """
    partitions = partitions_of(consumer, topic)
    if partition is None:
        return partitions
    if partition not in partitions:
        raise UsageError(f"{topic} has partitions {partitions}, not {partition}")
    return [partition]


def target_offsets(
    consumer: Any, topic: str, partitions: Sequence[int], target: ReplayTarget
) -> dict[int, int | None]:
    """The offset ``target`` names in each partition; ``None``: after the last record.

    Raises:
        BrokerUnavailable: Kafka did not answer.
    """
    if target.to_earliest:
        return dict.fromkeys(partitions, 0)  # clamped to the low watermark
    if target.from_timestamp is None:
        return dict.fromkeys(partitions, target.from_offset)
    stamp = h.millis(target.from_timestamp)
    try:
        found = consumer.offsets_for_times(
            [TopicPartition(topic, p, stamp) for p in partitions], timeout=TIMEOUT_S
        )
    except KafkaException as exc:
        raise BrokerUnavailable(f"offsets_for_times on {topic} failed: {exc}") from exc
    # -1: no record at or after the timestamp: move to the end.
    return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in found}


def committed_offsets(
    admin: AdminClient, group: str, topic: str, partitions: Sequence[int]
) -> dict[int, int]:
    """The group's committed offsets on ``topic`` (partitions without one are absent).

    Raises:
        BrokerUnavailable: Kafka did not answer.
    """
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
    try:
        result = admin.list_consumer_group_offsets([request], request_timeout=TIMEOUT_S)[group]
        listed = result.result(TIMEOUT_S)
    except KafkaException as exc:
        raise BrokerUnavailable(f"cannot read offsets of group {group!r}: {exc}") from exc
    return {tp.partition: tp.offset for tp in listed.topic_partitions if tp.offset >= 0}


def active_members(admin: AdminClient, group: str) -> list[str]:
    """Client ids (and hosts) of the group's current members; empty when nobody runs.

    Raises:
        BrokerUnavailable: Kafka did not answer.
    """
    try:
        description = admin.describe_consumer_groups([group], request_timeout=TIMEOUT_S)[group]
        described = description.result(TIMEOUT_S)
    except KafkaException as exc:
        raise BrokerUnavailable(f"cannot describe group {group!r}: {exc}") from exc
    return [f"{m.client_id}@{m.host}" for m in described.members]


def apply_plan(admin: AdminClient, group: str, plans: Sequence[PartitionPlan]) -> int:
    """Commit each plan's new offset for the group; return how many partitions moved.

    Raises:
        BrokerUnavailable: Kafka refused (for example: the group became active).
    """
    moving = [p for p in plans if p.changes]
    if not moving:
        return 0
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(p.topic, p.partition, p.new) for p in moving]
    )
    try:
        result = admin.alter_consumer_group_offsets([request], request_timeout=TIMEOUT_S)[group]
        altered = result.result(TIMEOUT_S)
    except KafkaException as exc:
        raise BrokerUnavailable(
            f"Kafka refused to move the offsets of {group!r}: {exc}; "
            "stop every consumer of the group and try again"
        ) from exc
    failed = [tp for tp in altered.topic_partitions if tp.error is not None]
    if failed:
        raise BrokerUnavailable(f"offsets not moved for {failed[0].topic}[{failed[0].partition}]")
    return len(moving)


__all__ = [
    "PartitionPlan",
    "ReplayTarget",
    "active_members",
    "apply_plan",
    "committed_offsets",
    "compute_plan",
    "plan_partition",
    "selected_partitions",
    "target_offsets",
]
