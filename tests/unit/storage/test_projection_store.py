"""The projection stores: SQLite and PostgreSQL give the same answers (each test runs on both)."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from mediaflow.events import MediaDetected, MediaDownloadFailed, MediaStored
from mediaflow.media_state import fold, millis, plain_record
from mediaflow.storage.projection import (
    LogRecord,
    MediaQuery,
    ProjectionStore,
    StoreReplaced,
    open_rebuild,
    open_store,
)
from mediaflow.storage.projection.postgres import split_url
from tests.support.projection import (
    T0,
    dead_lettered,
    detected,
    drop_schema,
    failed,
    redriven,
    store_url,
    stored,
)

TOPIC = "media.events"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def projection_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url, schema = store_url(request.param, tmp_path)
    yield url
    if schema:
        drop_schema(schema)


@pytest.fixture
def store(projection_url: str) -> Iterator[ProjectionStore]:
    opened = open_store(projection_url)
    yield opened
    opened.close()


def records(events: list, partition: int = 0, start: int = 0) -> list[LogRecord]:
    return [LogRecord(TOPIC, partition, start + i, e) for i, e in enumerate(events)]


def test_a_batch_creates_rows_and_stores_the_next_offset(store: ProjectionStore) -> None:
    applied = store.apply_batch(records([detected("m1"), detected("m2"), stored("m1", 9)]))
    assert applied == 3
    assert store.get("m1").status == "stored"  # type: ignore[union-attr]
    assert store.get("m2").status == "detected"  # type: ignore[union-attr]
    assert store.offsets(TOPIC) == {0: 3}


def test_states_written_again_replace_their_rows_nulls_included(store: ProjectionStore) -> None:
    """A rebuild writes a media, reads it back later and writes it again with what changed."""
    retrying = fold(None, MediaDetected, plain_record(detected("m1")))
    fold(retrying, MediaDownloadFailed, plain_record(failed("m1", 5)))
    other = fold(None, MediaDetected, plain_record(detected("m2")))
    store.put_states([retrying, other])
    loaded = store.load_states(["m1", "m2", "m3"])
    assert loaded == {"m1": retrying, "m2": other}
    assert loaded["m1"]["next_retry_at"] is not None
    done = fold(loaded["m1"], MediaStored, plain_record(stored("m1", 9)))
    store.put_states([done])
    assert store.load_states(["m1"]) == {"m1": done}
    assert store.get("m1").next_retry_at is None  # type: ignore[union-attr]
    assert store.get("m1").status == "stored"  # type: ignore[union-attr]


def test_a_batch_re_read_after_a_crash_is_not_applied_again(store: ProjectionStore) -> None:
    batch = records([detected("m1"), failed("m1", 5, attempt=1)])
    store.apply_batch(batch)
    # "crash" before the Kafka commit: the same records come again, plus one new one.
    again = store.apply_batch([*batch, LogRecord(TOPIC, 0, 2, failed("m1", 9, attempt=2))])
    assert again == 1
    assert store.get("m1").attempts == 2  # type: ignore[union-attr]
    assert store.stats().total == 1


def test_undecodable_records_advance_the_offset_without_a_row(store: ProjectionStore) -> None:
    store.apply_batch([LogRecord(TOPIC, 1, 0, None), LogRecord(TOPIC, 1, 1, detected("m1"))])
    assert store.offsets(TOPIC) == {1: 2}
    assert [r.media_id for r in store.rows()] == ["m1"]


def test_a_stale_generation_is_refused(store: ProjectionStore) -> None:
    with pytest.raises(StoreReplaced):
        store.apply_batch(records([detected("m1")]), generation="not-this-one")
    assert store.get("m1") is None


def test_pagination_walks_every_matching_row_exactly_once(store: ProjectionStore) -> None:
    # Two media per timestamp, so pages break inside ties.
    events = [
        detected(f"m{i:02d}", t=i // 2, client="acme" if i % 3 else "other") for i in range(25)
    ]
    store.apply_batch(records(events))
    seen: list[str] = []
    query = MediaQuery(client_id="acme", limit=4)
    while True:
        page = store.list(query)
        seen += [r.media_id for r in page.rows]
        if page.next_after is None:
            break
        query = MediaQuery(client_id="acme", limit=4, after=page.next_after)
    expected = [f"m{i:02d}" for i in range(25) if i % 3]
    assert sorted(seen) == expected
    assert len(seen) == len(expected)


def test_listing_filters_by_status_type_and_time(store: ProjectionStore) -> None:
    store.apply_batch(
        records([detected("a", 0), detected("b", 100), stored("b", 110), detected("c", 200)])
    )
    from mediaflow.media_state import millis
    from tests.support.projection import at

    page = store.list(MediaQuery(status="detected", since_ms=millis(at(50))))
    assert [r.media_id for r in page.rows] == ["c"]
    page = store.list(MediaQuery(until_ms=millis(at(150)), media_type="image"))
    assert [r.media_id for r in page.rows] == ["b", "a"]


def test_text_with_nul_and_control_characters_from_a_provider_is_stored(
    store: ProjectionStore,
) -> None:
    # PostgreSQL text cannot hold NUL: such a file name stopped the projection for good.
    hostile = "a\x00b\x01\x1b[2J\ufffd.jpg"
    event = detected("m1")
    event = dataclasses.replace(
        event, info=dataclasses.replace(event.info, file_name=hostile, sender_name="\x00\x07")
    )
    failure = dataclasses.replace(failed("m1", 5), error_message="quota \x00 exceeded\r\n")
    assert store.apply_batch(records([event, failure])) == 2
    row = store.get("m1")
    assert row is not None
    assert row.file_name == "a\ufffdb\x01\x1b[2J\ufffd.jpg"
    assert row.sender_name == "\ufffd\x07"
    assert row.last_error_message == "quota \ufffd exceeded\r\n"


def test_stats_count_by_status_type_and_client(store: ProjectionStore) -> None:
    store.apply_batch(
        records(
            [
                detected("a", 0, client="x"),
                detected("b", 5, client="y"),
                dead_lettered("b", 9),
                detected("c", 7, client="y"),
                stored("c", 8),
            ]
        )
    )
    stats = store.stats()
    assert stats.by_status == {"detected": 1, "dead_lettered": 1, "stored": 1}
    assert stats.by_client == {"x": 1, "y": 2}
    assert stats.dead_letters == 1
    assert stats.oldest_in_flight_at == store.get("a").created_at  # type: ignore[union-attr]


def test_daily_counts_group_by_client_instance_day_and_status(store: ProjectionStore) -> None:
    store.apply_batch(
        records([detected("a", 0), detected("b", 1), stored("b", 2), detected("c", 86_400)])
    )
    counts = [(c.day, c.status, c.count) for c in store.daily_counts(client_id="c1")]
    assert counts == [
        ("2026-11-28", "detected", 1),
        ("2026-11-28", "stored", 1),
        ("2026-11-29", "detected", 1),
    ]


def test_rebuild_swaps_in_new_contents_and_a_new_generation(projection_url: str) -> None:
    live = open_store(projection_url)
    live.apply_batch(records([detected("old")]))
    generation = live.generation()
    rebuild = open_rebuild(projection_url)
    rebuild.store.apply_batch(records([detected("new"), redriven("new", 3)]))
    rebuild.swap()
    assert [r.media_id for r in live.rows()] == ["new"]
    assert live.generation() != generation
    live.close()


def test_a_rebuilt_store_has_every_index_of_a_migrated_one(projection_url: str) -> None:
    open_store(projection_url).close()
    migrated = media_indexes(projection_url)
    rebuild = open_rebuild(projection_url)
    rebuild.store.apply_batch(records([detected("m1"), stored("m1", 5)]))
    rebuild.swap()
    assert len(migrated) >= 5
    assert media_indexes(projection_url) == migrated


def media_indexes(url: str) -> set[str]:
    """Names of the ``media`` table's secondary indexes in the store at ``url``."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite://")) as conn:
            found = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'media' "
                "AND sql IS NOT NULL"
            )
            return {name for (name,) in found}
    conninfo, schema = split_url(url)
    with psycopg.connect(conninfo) as conn:
        found = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'media' "
            "AND indexname <> 'media_pkey'",
            (schema,),
        )
        return {name for (name,) in found}


def test_reopening_keeps_state_and_does_not_migrate_twice(projection_url: str) -> None:
    first = open_store(projection_url)
    first.apply_batch(records([detected("m1")]))
    first.close()
    second = open_store(projection_url)
    assert second.get("m1") is not None
    second.close()


def test_two_copies_applying_the_same_partition_apply_each_record_once(projection_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    batch = records([detected(f"m{i}", i) for i in range(200)])
    copies = [open_store(projection_url), open_store(projection_url)]
    chunks = [batch[i : i + 20] for i in range(0, 200, 20)]
    with ThreadPoolExecutor(2) as pool:
        # Both copies get every chunk, as two owners of a partition would during a rebalance.
        applied = pool.map(lambda c: sum(c.apply_batch(chunk) for chunk in chunks), copies)
        total = sum(applied)
    assert total == 200
    assert copies[0].offsets(TOPIC) == {0: 200}
    for copy in copies:
        copy.close()


def _of_message(media_id: str, instance: str, message: str, t: float = 0) -> object:
    event = detected(media_id, t, instance=instance)
    return dataclasses.replace(event, info=dataclasses.replace(event.info, message_id=message))


def test_a_message_lookup_answers_every_media_of_that_message_and_no_other(
    store: ProjectionStore,
) -> None:
    store.apply_batch(
        records(
            [
                _of_message("album-1", "i1", "wamid.A", 1),
                _of_message("album-2", "i1", "wamid.A", 2),
                _of_message("same-id-elsewhere", "i2", "wamid.A", 3),
                _of_message("other-message", "i1", "wamid.B", 4),
            ]
        )
    )
    page = store.list(MediaQuery(instance_id="i1", message_id="wamid.A"))
    assert [r.media_id for r in page.rows] == ["album-2", "album-1"]
    assert store.list(MediaQuery(instance_id="i1", message_id="wamid.none")).rows == []


def test_a_message_lookup_is_answered_from_an_index_in_sqlite(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'plan.db'}")
    try:
        with store._cursor() as cur:  # type: ignore[attr-defined]
            cur.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM media WHERE instance_id = ? "
                "AND message_id = ? ORDER BY created_at DESC, media_id DESC",
                ("i1", "wamid.A"),
            )
            plan = " ".join(str(row[-1]) for row in cur.fetchall())
    finally:
        store.close()
    assert "INDEX media_message (instance_id=? AND message_id=?)" in plan
    assert "TEMP B-TREE" not in plan  # the index also gives the order


def test_activity_counts_stored_failed_and_dead_lettered_per_time_bucket(
    store: ProjectionStore,
) -> None:
    store.apply_batch(
        records(
            [
                detected("a", 0),
                stored("a", 30),
                detected("b", 0, client="c2"),
                failed("b", 70),
                dead_lettered("b", 400),
                detected("old", 0),
                stored("old", -3600),
            ]
        )
    )
    t0 = millis(T0)
    buckets = {
        a.bucket_start - t0: (a.stored, a.failed, a.dead_lettered)
        for a in store.activity(since_ms=t0, bucket_ms=300_000)
    }
    assert buckets == {0: (1, 1, 0), 300_000: (0, 0, 1)}
    (only_c2,) = store.activity(since_ms=t0 + 300_000, bucket_ms=300_000, client_id="c2")
    assert (only_c2.stored, only_c2.dead_lettered) == (0, 1)
