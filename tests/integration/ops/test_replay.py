"""Replay on the real broker: plan from a timestamp, offsets moved, refusal, bounded copies."""

import time

import pytest
from confluent_kafka import Producer, TopicPartition

from mediaflow.cli import build_parser
from mediaflow.errors import UsageError
from mediaflow.kafka import headers as h
from mediaflow.kafka.clients import admin_client, consumer
from mediaflow.ops import replay
from mediaflow.ops.replay_range import REPLAY_ORIGINAL_OFFSET
from tests.support.kafka import produce, read_all

pytestmark = pytest.mark.integration


def run(settings, *argv):
    args = build_parser().parse_args(list(argv))
    return args.handler(args, settings)


def commit(settings, group, topic, offset):
    c = consumer(settings.kafka, group)
    c.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    c.close()


def test_replay_from_a_timestamp_moves_the_group_to_the_first_record_after_it(settings, layout):
    topic = layout.webhooks
    base = int(time.time() * 1000) - 60_000
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    for value, ts in ((b"old", base), (b"new1", base + 30_000), (b"new2", base + 40_000)):
        producer.produce(topic, value, b"k", partition=0, timestamp=ts)
    producer.flush(10)
    commit(settings, "g-replay", topic, 3)
    stamp = str(base + 20_000)
    assert (
        run(
            settings,
            "replay",
            "--group",
            "g-replay",
            "--topic",
            topic,
            "--partition",
            "0",
            "--from-timestamp",
            stamp,
            "--yes",
        )
        == 0
    )
    committed = replay.committed_offsets(admin_client(settings.kafka), "g-replay", topic, [0])
    assert committed == {0: 1}


def test_dry_run_prints_the_plan_and_moves_nothing(settings, layout, capsys):
    produce(settings, layout.webhooks, [(b"k", b"v")] * 3)
    plans = replay.compute_plan(
        settings.kafka,
        admin_client(settings.kafka),
        "g-none",
        layout.webhooks,
        replay.ReplayTarget(to_earliest=True),
    )
    assert sum(p.to_reprocess for p in plans) == 3
    assert (
        run(
            settings,
            "replay",
            "--group",
            "g-none",
            "--topic",
            layout.webhooks,
            "--to-earliest",
            "--dry-run",
        )
        == 0
    )
    assert "3 record(s) to reprocess" in capsys.readouterr().out
    assert (
        replay.committed_offsets(admin_client(settings.kafka), "g-none", layout.webhooks, range(6))
        == {}
    )


def test_replay_refuses_while_the_group_has_an_active_member(settings, layout):
    member = consumer(settings.kafka, "g-active")
    member.subscribe([layout.webhooks])
    deadline = time.monotonic() + 30
    while not member.assignment() and time.monotonic() < deadline:
        member.poll(0.2)
    try:
        assert (
            run(
                settings,
                "replay",
                "--group",
                "g-active",
                "--topic",
                layout.webhooks,
                "--to-earliest",
                "--yes",
            )
            == 1
        )
    finally:
        member.close()


def test_a_bounded_replay_copies_only_the_range_and_leaves_offsets_alone(settings, layout):
    topic = layout.webhooks
    base = int(time.time() * 1000) - 60_000
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    stamps = {
        b"before": base,
        b"in1": base + 20_000,
        b"in2": base + 30_000,
        b"after": base + 50_000,
    }
    for value, ts in stamps.items():
        producer.produce(topic, value, b"k", partition=0, timestamp=ts)
    producer.flush(10)
    commit(settings, "g-bounded", topic, 4)
    argv = ["replay", "--topic", topic, "--partition", "0", "--yes"]
    window = ["--from-timestamp", str(base + 10_000), "--until", str(base + 40_000)]
    assert run(settings, *argv, *window) == 0
    assert run(settings, *argv, "--from-offset", "3", "--until-offset", "4") == 0

    copies = [m for m in read_all(settings, topic) if m.offset() >= 4]
    assert [m.value() for m in copies] == [b"in1", b"in2", b"after"]
    provenance = [h.to_dict(m.headers())[REPLAY_ORIGINAL_OFFSET] for m in copies]
    assert provenance == ["1", "2", "3"]
    committed = replay.committed_offsets(admin_client(settings.kafka), "g-bounded", topic, [0])
    assert committed == {0: 4}


def test_a_bounded_replay_refuses_a_group_and_an_empty_range(settings, layout):
    produce(settings, layout.webhooks, [(b"k", b"v")])
    argv = ["replay", "--topic", layout.webhooks, "--yes", "--from-offset", "0"]
    with pytest.raises(UsageError, match="drop --group"):
        run(settings, *argv, "--until-offset", "1", "--group", "g")
    with pytest.raises(UsageError, match="no offsets"):
        run(settings, *argv, "--until-offset", "0")
