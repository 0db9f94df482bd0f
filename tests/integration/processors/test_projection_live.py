"""The projection on the real Kafka: live consumption, crash safety, rebuild equals live."""

from __future__ import annotations

import dataclasses
import random
import threading
import time

import pytest
from confluent_kafka import TopicPartition

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.kafka import clients
from mediaflow.kafka.stage_runner import run_stage
from mediaflow.kafka.topics import TopicLayout
from mediaflow.processors.projection import consumer as projection
from mediaflow.processors.projection.rebuild import partition_sizes, rebuild, replay
from mediaflow.storage.projection import open_rebuild, open_store
from tests.support.kafka import produce
from tests.support.projection import (
    dead_lettered,
    detected,
    dismissed,
    drop_schema,
    failed,
    redriven,
    store_url,
    stored,
)

pytestmark = pytest.mark.integration


def history(count: int, seed: int = 3) -> list:
    """Events of ``count`` media with varied fates, a few out of order and duplicated."""
    rng = random.Random(seed)
    events: list = []
    for i in range(count):
        media = f"media-{i:04d}"
        fate = rng.choice(["stored", "retry-stored", "dead", "redriven", "dismissed"])
        life = [detected(media, i, client=f"c{i % 3}")]
        if fate == "stored":
            life.append(stored(media, i + 5))
        elif fate == "retry-stored":
            life += [failed(media, i + 1, 1), stored(media, i + 20, 2)]
        elif fate == "dead":
            life += [failed(media, i + 1, 1), dead_lettered(media, i + 30, 2)]
        else:
            life += [dead_lettered(media, i + 30, 2), redriven(media, i + 40)]
            life.append(dismissed(media, i + 50) if fate == "dismissed" else stored(media, i + 60))
        if rng.random() < 0.2:
            life.reverse()  # out of order
        if rng.random() < 0.2:
            life.append(life[0])  # duplicate delivery
        events += life
    return events


def publish(settings: Settings, layout: TopicLayout, events: list) -> None:
    codec = AvroCodec()
    produce(settings, layout.media_events, [(e.media_id, codec.encode(e)) for e in events])


def run_projection(settings: Settings) -> int:
    return run_stage(projection.STAGE, settings, idle_exit_s=1.5)


def snapshot(url: str) -> list:
    store = open_store(url)
    try:
        return list(store.rows())
    finally:
        store.close()


def test_live_projection_shows_the_state_of_every_media(
    settings: Settings, layout: TopicLayout
) -> None:
    publish(settings, layout, [detected("m1"), failed("m1", 3), detected("m2"), stored("m1", 9)])
    assert run_projection(settings) == 0
    rows = {r.media_id: r for r in snapshot(settings.projection_db_url)}
    assert (rows["m1"].status, rows["m1"].attempts, rows["m2"].status) == ("stored", 1, "detected")


def test_a_restart_after_a_crash_before_the_kafka_commit_applies_nothing_twice(
    settings: Settings, layout: TopicLayout
) -> None:
    publish(settings, layout, [detected("m1"), failed("m1", 3, 1), failed("m1", 6, 2)])
    assert run_projection(settings) == 0
    # Forget the courtesy Kafka commit, as if the process died right after the DB commit.
    admin_consumer = clients.consumer(settings.kafka, projection.STAGE.clients(settings).group_id)
    partitions = (
        admin_consumer.list_topics(layout.media_events).topics[layout.media_events].partitions
    )
    admin_consumer.commit(
        offsets=[TopicPartition(layout.media_events, p, 0) for p in partitions], asynchronous=False
    )
    admin_consumer.close()
    publish(settings, layout, [dead_lettered("m1", 9, 2)])
    assert run_projection(settings) == 0
    store = open_store(settings.projection_db_url)
    assert store.get("m1").status == "dead_lettered"  # type: ignore[union-attr]
    assert sum(store.offsets(layout.media_events).values()) == 4
    store.close()


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_rebuild_equals_live_row_for_row(
    settings: Settings, layout: TopicLayout, tmp_path, backend: str, workers: int
) -> None:
    publish(settings, layout, history(60))
    assert run_projection(settings) == 0
    url, schema = store_url(backend, tmp_path)
    rebuilt = dataclasses.replace(settings, projection_db_url=url)
    try:
        result = rebuild(rebuilt, workers=workers)
        assert result.events > 60
        live_rows = snapshot(settings.projection_db_url)
        assert len(live_rows) == 60
        assert snapshot(url) == live_rows
        assert sum(store_offsets(rebuilt, layout).values()) == result.events
    finally:
        if schema:
            drop_schema(schema)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_replay_writing_its_rows_many_times_over_equals_live(
    settings: Settings, layout: TopicLayout, tmp_path, backend: str
) -> None:
    events = history(40)
    random.Random(5).shuffle(events)  # a media's events far apart, across many writes
    publish(settings, layout, events)
    assert run_projection(settings) == 0
    url, schema = store_url(backend, tmp_path)
    target = open_rebuild(url)
    try:
        topic = layout.media_events
        partitions = sorted(partition_sizes(settings.kafka, topic))
        replayed = replay(
            settings.kafka, topic, partitions, target.store, batch_size=7, fold_rows=5
        )
        target.swap()
        assert replayed == len(events)
        assert snapshot(url) == snapshot(settings.projection_db_url)
    finally:
        if schema:
            drop_schema(schema)


def test_the_projection_continues_from_the_rebuilt_stores_offsets(
    settings: Settings, layout: TopicLayout
) -> None:
    publish(settings, layout, [detected("m1")])
    assert run_projection(settings) == 0
    rebuild(settings)
    publish(settings, layout, [stored("m1", 5), detected("m2", 6)])
    assert run_projection(settings) == 0
    rows = {r.media_id: r.status for r in snapshot(settings.projection_db_url)}
    assert rows == {"m1": "stored", "m2": "detected"}


def wait_for_status(url: str, media_id: str, status: str, timeout: float = 30) -> None:
    store = open_store(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            row = store.get(media_id)
            if row is not None and row.status == status:
                return
            time.sleep(0.2)
    finally:
        store.close()
    raise AssertionError(f"{media_id} never became {status}")


def test_a_running_projection_carries_on_after_a_rebuild_is_swapped_in(
    settings: Settings, layout: TopicLayout
) -> None:
    store = open_store(settings.projection_db_url)
    live = projection.ProjectionConsumer(
        consumer=clients.consumer(settings.kafka, projection.STAGE.clients(settings).group_id),
        store=store,
        codec=AvroCodec(),
        topic=layout.media_events,
        batch_max_interval_s=0.2,
    )
    thread = threading.Thread(target=live.run)
    thread.start()
    try:
        publish(settings, layout, [detected("m1")])
        wait_for_status(settings.projection_db_url, "m1", "detected")
        rebuild(settings)
        publish(settings, layout, [stored("m1", 5), detected("m2", 6)])
        wait_for_status(settings.projection_db_url, "m1", "stored")
        wait_for_status(settings.projection_db_url, "m2", "detected")
    finally:
        live.stop()
        thread.join(30)
        store.close()
    assert sum(store_offsets(settings, layout).values()) == 3


def store_offsets(settings: Settings, layout: TopicLayout) -> dict[int, int]:
    store = open_store(settings.projection_db_url)
    try:
        return store.offsets(layout.media_events)
    finally:
        store.close()
