"""Two detector copies in one consumer group on real Kafka: they split the partitions,
and when one stops the other takes its partitions over without losing or repeating a media."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest
from confluent_kafka.admin import AdminClient

from mediaflow.config import Settings
from mediaflow.kafka.topics import load_layout
from mediaflow.processors.detector.stage import STAGE
from tests.support.detector import (
    as_record,
    envelope,
    image_body,
    media_id_of,
    wait_until_some_committed,
)
from tests.support.kafka import produce, read_all
from tests.support.processes import spawn_role, stop

pytestmark = pytest.mark.integration


def assignment(settings: Settings) -> dict[str, set[int]]:
    """Return the group's members (by static instance id) and their webhook partitions."""
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    group = STAGE.clients(settings).group_id
    description = admin.describe_consumer_groups([group])[group].result(timeout=10)
    return {
        member.group_instance_id: {tp.partition for tp in member.assignment.topic_partitions}
        for member in description.members
    }


def wait_for_assignment(
    settings: Settings, done: Callable[[dict[str, set[int]]], bool], timeout: float = 60
) -> dict[str, set[int]]:
    deadline = time.monotonic() + timeout
    current: dict[str, set[int]] = {}
    while time.monotonic() < deadline:
        current = assignment(settings)
        if done(current):
            return current
        time.sleep(0.5)
    raise AssertionError(f"group assignment never settled: {current}")


def wait_for_media(
    settings: Settings, topic: str, expected: set[str], timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        seen = {m.key().decode() for m in read_all(settings, topic, timeout=5)}
        if expected <= seen:
            return
        time.sleep(0.5)
    raise AssertionError(f"{len(expected - seen)} media never reached {topic}")


def test_two_copies_split_the_partitions_and_one_takes_over_when_the_other_stops(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(batch_max_records=5)
    layout = load_layout(settings.kafka)
    partitions = set(range(6))
    # Static members send no LeaveGroup on close: a short session hands the
    # stopped copy's partitions over quickly.
    fast_eviction = {"MEDIAFLOW_KAFKA_PROP_SESSION_TIMEOUT_MS": "6000"}
    first_half = [envelope(image_body(f"3EB0{i:016X}")) for i in range(300)]
    second_half = [envelope(image_body(f"3EB1{i:016X}")) for i in range(150)]

    copies = {
        name: spawn_role(
            "detector", settings, env={"MEDIAFLOW_INSTANCE_NAME": name, **fast_eviction}
        )
        for name in ("a", "b")
    }
    try:
        split = wait_for_assignment(settings, lambda g: len(g) == 2 and all(g.values()))
        assert set().union(*split.values()) == partitions
        assert not set.intersection(*split.values())
        member_a = next(m for m in split if m.endswith("-a"))
        member_b = next(m for m in split if m.endswith("-b"))

        produce(settings, layout.webhooks, [as_record(w) for w in first_half])
        wait_until_some_committed(settings, layout.media_events)
        assert stop(copies["a"]) == 0  # SIGTERM mid-stream: it drains and commits

        # Membership changes before the new assignment: wait for both.
        takeover = wait_for_assignment(
            settings, lambda g: set(g) == {member_b} and g[member_b] == partitions
        )
        assert takeover[member_b] == partitions
        assert split[member_a], "copy a owned partitions that b had to take over"

        produce(settings, layout.webhooks, [as_record(w) for w in second_half])
        expected = {media_id_of(w) for w in first_half + second_half}
        wait_for_media(settings, layout.media_events, expected)
        wait_for_media(settings, layout.download_requests, expected)
    finally:
        for proc in copies.values():
            stop(proc)

    requests = Counter(m.key().decode() for m in read_all(settings, layout.download_requests))
    detected = Counter(m.key().decode() for m in read_all(settings, layout.media_events))
    assert set(requests) == set(detected) == expected
    assert set(requests.values()) == set(detected.values()) == {1}
