"""``mediaflow status``: lag, throughput, dead letters, in-flight age, reachability, replication.

A :class:`Sample` is one look at the cluster (committed offsets of every
consumer group reading our topics, and where each partition's data ends). Two
samples an interval apart give throughput (offsets committed per second);
``--watch`` keeps sampling and compares each sample with the previous one.

Every stage writes in Kafka transactions, so each partition holds a marker
after every transaction. Lag, backlog and counts here are measured against the
last committed *data* record (:func:`~mediaflow.kafka.scan.data_ends`), never
the high watermark: a caught-up pipeline shows lag 0.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, ConsumerGroupTopicPartitions, KafkaException
from confluent_kafka.admin import AdminClient

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.errors import BrokerUnavailable, MediaflowError
from mediaflow.kafka.replication import read_replication
from mediaflow.kafka.scan import (
    RecordCounter,
    count_records,
    data_ends,
    first_records,
    scan,
)
from mediaflow.kafka.topics import TopicLayout
from mediaflow.ops.dlq import DeadLetterView, view_of
from mediaflow.storage.projection import open_store

TIMEOUT_S = 10
NEWEST_PER_PARTITION = 5

TP = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Sample:
    """Committed offsets per (group, topic, partition) and data ends at ``at`` (monotonic).

    ``end`` is the offset after the last committed data record of a partition;
    ``first_pending`` the timestamp (epoch ms) of the first data record a group
    has not committed yet, for each partition where it lags.
    """

    at: float
    committed: dict[tuple[str, str, int], int]
    end: dict[TP, int]
    first_pending: dict[tuple[str, str, int], int] = field(default_factory=dict)


def lag_rows(current: Sample, previous: Sample | None = None) -> list[dict[str, Any]]:
    """One row per group and partition: committed, data end, lag, records/s (pure).

    Throughput is ``None`` without a previous sample.
    """
    rows = []
    elapsed = current.at - previous.at if previous else 0.0
    for (group, topic, partition), committed in sorted(current.committed.items()):
        end = current.end.get((topic, partition), committed)
        rate = None
        if previous and elapsed > 0:
            before = previous.committed.get((group, topic, partition))
            rate = None if before is None else max(0, committed - before) / elapsed
        rows.append(
            {
                "group": group,
                "topic": topic,
                "partition": partition,
                "committed": committed,
                "end": end,
                "lag": max(0, end - committed),
                "rate": rate,
            }
        )
    return rows


def take_sample(admin: AdminClient, settings: Settings, layout: TopicLayout) -> Sample:
    """Look at every consumer group with committed offsets on one of ``layout``'s topics.

    Raises:
        BrokerUnavailable: Kafka did not answer.
    """
    topics = {s.name for s in layout.specs}
    committed: dict[tuple[str, str, int], int] = {}
    for group in _groups(admin):
        for tp in _offsets(admin, group):
            if tp.topic in topics and tp.offset >= 0:
                committed[(group, tp.topic, tp.partition)] = tp.offset
    end = {}
    for topic in sorted({t for _, t, _ in committed}):
        for partition, offset in data_ends(settings.kafka, topic).items():
            end[(topic, partition)] = offset
    at = time.monotonic()
    return Sample(at, committed, end, _first_pending(settings, committed, end))


def _first_pending(
    settings: Settings, committed: dict[tuple[str, str, int], int], end: dict[TP, int]
) -> dict[tuple[str, str, int], int]:
    """Timestamps of the first uncommitted data record of each lagging group partition."""
    lagging: dict[tuple[str, str], dict[int, int]] = {}
    for (group, topic, partition), offset in committed.items():
        if end.get((topic, partition), offset) > offset:
            lagging.setdefault((group, topic), {})[partition] = offset
    pending = {}
    for (group, topic), starts in sorted(lagging.items()):
        for partition, message in first_records(settings.kafka, topic, starts).items():
            kind, timestamp = message.timestamp()
            if kind != TIMESTAMP_NOT_AVAILABLE:
                pending[(group, topic, partition)] = timestamp
    return pending


def stage_rows(
    rows: Iterable[dict[str, Any]], first_pending: dict[tuple[str, str, int], int], now_ms: float
) -> list[dict[str, Any]]:
    """One row per consumer group: records/s, records in flight, the oldest one's age (pure).

    ``rows`` are :func:`lag_rows` of a sample and ``first_pending`` its
    :attr:`Sample.first_pending`. The rate is what the group committed per
    second (``None`` when its rows have none: the first look); in flight is the
    group's lag summed over its partitions (what it has not committed, up to the
    last data record); the age is that of the oldest first uncommitted record,
    ``None`` when the group is caught up.
    """
    in_flight: dict[str, int] = {}
    rates: dict[str, float] = {}
    for row in rows:
        in_flight[row["group"]] = in_flight.get(row["group"], 0) + row["lag"]
        if row["rate"] is not None:
            rates[row["group"]] = rates.get(row["group"], 0.0) + row["rate"]
    oldest: dict[str, int] = {}
    for (group, _topic, _partition), timestamp in first_pending.items():
        oldest[group] = min(timestamp, oldest.get(group, timestamp))
    return [
        {
            "group": group,
            "rate": rates.get(group),
            "in_flight": count,
            "oldest_in_flight_age_s": (
                max(0, round((now_ms - oldest[group]) / 1000))
                if count and group in oldest
                else None
            ),
        }
        for group, count in sorted(in_flight.items())
    ]


def _groups(admin: AdminClient) -> list[str]:
    try:
        listed = admin.list_consumer_groups(request_timeout=TIMEOUT_S).result(TIMEOUT_S)
    except KafkaException as exc:
        raise BrokerUnavailable(f"cannot list consumer groups: {exc}") from exc
    except TimeoutError as exc:
        # Every broker is asked: one that died a moment ago (not yet fenced) never answers.
        raise BrokerUnavailable(
            f"consumer groups not listed within {TIMEOUT_S} s: a broker may be down "
            "(`mediaflow diagnose` shows which)"
        ) from exc
    # Operator tools' own throwaway groups never commit; skip them anyway.
    return sorted(g.group_id for g in listed.valid if not g.group_id.startswith("mediaflow-ops-"))


def _offsets(admin: AdminClient, group: str) -> list[Any]:
    try:
        future = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group)], request_timeout=TIMEOUT_S
        )[group]
        return list(future.result(TIMEOUT_S).topic_partitions or [])
    except (KafkaException, TimeoutError):
        return []  # the group vanished, or its coordinator is moving: nothing to show


@dataclass
class Health:
    """Everything but the lag table."""

    broker: str = "ok"
    s3: str = "ok"
    replication: str = "ok"
    dead_letters: int = 0
    newest_error: dict[str, Any] | None = None
    projection: dict[str, Any] = field(default_factory=dict)
    under_replicated: list[str] = field(default_factory=list)


def dead_letter_summary(
    settings: Settings, layout: TopicLayout, counter: RecordCounter | None = None
) -> tuple[int, DeadLetterView | None]:
    """How many dead letters the topic holds and the newest one (decodes only the tail).

    ``counter`` (kept by a caller that asks again and again, like the
    dashboard) reads only the dead letters written since its last count.
    """
    total = (
        counter.count()
        if counter is not None
        else count_records(settings.kafka, layout.dead_letters)
    )
    codec = AvroCodec()
    tail = [
        view_of(codec, m)
        for m in scan(
            settings.kafka,
            layout.dead_letters,
            timeout=10,
            start_at=lambda low, high: max(low, high - NEWEST_PER_PARTITION),
        )
    ]
    newest = max(tail, key=lambda v: v.when or datetime.min.replace(tzinfo=UTC), default=None)
    return total, newest


def projection_summary(
    settings: Settings, layout: TopicLayout, end: dict[TP, int]
) -> dict[str, Any]:
    """Oldest in-flight media age and how far the projection is behind the event log."""
    store = open_store(settings.projection_db_url)
    try:
        stats = store.stats()
        applied = store.offsets(layout.media_events)
    finally:
        store.close()
    behind = sum(
        max(0, e - applied.get(p, 0)) for (t, p), e in end.items() if t == layout.media_events
    )
    now_ms = time.time() * 1000
    oldest = stats.oldest_in_flight_at
    return {
        "media": stats.total,
        "by_status": stats.by_status,
        "oldest_in_flight_age_s": None if oldest is None else round((now_ms - oldest) / 1000),
        "events_not_applied": behind,
    }


def media_event_ends(settings: Settings, layout: TopicLayout) -> dict[TP, int]:
    """Data ends of the media event log (projection freshness)."""
    return {
        (layout.media_events, p): e
        for p, e in data_ends(settings.kafka, layout.media_events).items()
    }


def health(
    settings: Settings,
    layout: TopicLayout,
    s3: Any,
    admin: AdminClient,
    counter: RecordCounter | None = None,
) -> Health:
    """Broker and S3 reachability, replication, dead letters, projection; each fails on its own.

    ``counter``: see :func:`dead_letter_summary`.
    """
    result = Health()
    try:
        replication = read_replication(admin, layout.specs, TIMEOUT_S)
        result.replication = replication.summary()
        result.under_replicated = [str(p) for p in replication.under_replicated]
    except MediaflowError as exc:
        result.replication = f"unknown: {exc.message}"
    try:
        result.dead_letters, newest = dead_letter_summary(settings, layout, counter)
        if newest is not None:
            result.newest_error = {
                k: newest.summary()[k] for k in ("id", "failed_at", "stage", "kind", "message")
            }
        ends = media_event_ends(settings, layout)
    except MediaflowError as exc:
        result.broker = f"unreachable: {exc.message}"
        ends = {}
    try:
        s3.head_bucket(Bucket=settings.s3.bucket)
    except (ClientError, BotoCoreError) as exc:
        result.s3 = f"unreachable: {type(exc).__name__}"
    try:
        result.projection = projection_summary(settings, layout, ends)
    except (MediaflowError, OSError, sqlite3.Error) as exc:
        # A status screen shows a missing or locked store instead of failing.
        result.projection = {"error": f"{type(exc).__name__}: {exc}"}
    return result


def render(
    rows: Iterable[dict[str, Any]], state: Health, stages: Iterable[dict[str, Any]]
) -> dict[str, Any]:
    """The whole status as data (``--json``, and the source of the text view).

    ``stages``: :func:`stage_rows` of the same sample.
    """
    return {
        "at": datetime.now(UTC),
        "broker": state.broker,
        "s3": state.s3,
        "replication": state.replication,
        "dead_letters": state.dead_letters,
        "newest_dead_letter": state.newest_error,
        "projection": state.projection,
        "under_replicated": state.under_replicated,
        "stages": list(stages),
        "groups": list(rows),
    }


__all__ = [
    "Health",
    "Sample",
    "dead_letter_summary",
    "health",
    "lag_rows",
    "media_event_ends",
    "projection_summary",
    "render",
    "stage_rows",
    "take_sample",
]
