"""``mediaflow status`` on the real stack: lag, backlog and counts, transaction markers aside."""

import json
import time
import uuid

import pytest
from confluent_kafka import Producer, TopicPartition

from mediaflow.cli import build_parser
from mediaflow.codec import AvroCodec
from mediaflow.kafka.clients import consumer, transactional_producer
from mediaflow.kafka.scan import RecordCounter
from mediaflow.storage.projection import LogRecord, open_store
from tests.support.projection import stored

pytestmark = pytest.mark.integration
CODEC = AvroCodec()


def test_status_shows_the_lag_of_a_group_that_stopped_behind_the_high_watermark(
    settings, layout, capsys
):
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    for i in range(5):
        producer.produce(layout.webhooks, b"v%d" % i, b"k", partition=0)
    producer.flush(10)
    stopped = consumer(settings.kafka, f"{settings.kafka.topic_prefix}detector")
    stopped.commit(offsets=[TopicPartition(layout.webhooks, 0, 2)], asynchronous=False)
    stopped.close()

    args = build_parser().parse_args(["status", "--json", "--interval", "0"])
    assert args.handler(args, settings) == 0
    data = json.loads(capsys.readouterr().out)
    (row,) = [g for g in data["groups"] if g["topic"] == layout.webhooks]
    assert (row["committed"], row["end"], row["lag"]) == (2, 5, 3)
    assert data["broker"] == "ok" and data["s3"] == "ok"


def transactional_batches(
    settings, topic: str, batches: list[list[bytes]], first_ms: int | None = None
) -> None:
    """Write each batch in its own transaction, as every stage does (one marker per batch).

    ``first_ms``: the first record's timestamp, each next one a second later (default: now).
    """
    producer = transactional_producer(settings.kafka, f"test-status-{uuid.uuid4()}")
    producer.init_transactions(30)
    written = 0
    for batch in batches:
        producer.begin_transaction()
        for value in batch:
            at = {} if first_ms is None else {"timestamp": first_ms + 1000 * written}
            producer.produce(topic, value, b"k", partition=0, **at)
            written += 1
        producer.commit_transaction(30)


def test_a_caught_up_transactional_pipeline_shows_no_lag_no_backlog_and_true_counts(
    settings, layout, capsys
):
    transactional_batches(settings, layout.webhooks, [[b"a", b"b"], [b"c"]])
    transactional_batches(settings, layout.dead_letters, [[b"dl1"], [b"dl2"], [b"dl3"]])
    # A group that read everything commits the offset after the last data record.
    caught_up = consumer(settings.kafka, f"{settings.kafka.topic_prefix}detector")
    caught_up.commit(offsets=[TopicPartition(layout.webhooks, 0, 4)], asynchronous=False)
    caught_up.close()

    args = build_parser().parse_args(["status", "--json", "--interval", "0"])
    assert args.handler(args, settings) == 0
    data = json.loads(capsys.readouterr().out)
    (row,) = [g for g in data["groups"] if g["topic"] == layout.webhooks]
    assert (row["committed"], row["lag"]) == (4, 0)
    assert data["dead_letters"] == 3


def test_events_not_applied_ignores_transaction_markers(settings, layout, capsys):
    events = [stored(f"m-{i}", t=i) for i in range(2)]
    transactional_batches(settings, layout.media_events, [[CODEC.encode(e)] for e in events])
    store = open_store(settings.projection_db_url)
    # The projection applied both data records: offsets 0 and 2 (1 and 3 are markers).
    store.apply_batch(
        [LogRecord(layout.media_events, 0, o, e) for o, e in zip((0, 2), events, strict=True)]
    )
    store.close()

    args = build_parser().parse_args(["status", "--json", "--interval", "0"])
    args.handler(args, settings)
    assert json.loads(capsys.readouterr().out)["projection"]["events_not_applied"] == 0


def test_a_kept_dead_letter_counter_counts_only_new_records_and_stays_exact(settings, layout):
    counter = RecordCounter(settings.kafka, layout.dead_letters)
    transactional_batches(settings, layout.dead_letters, [[b"a", b"b"], [b"c"]])
    assert counter.count() == 3
    transactional_batches(settings, layout.dead_letters, [[b"d"], [b"e"]])
    assert counter.count() == 5
    assert counter.count() == 5  # nothing new: nothing counted twice, markers aside
    assert RecordCounter(settings.kafka, layout.dead_letters).count() == 5


def status_json(settings, capsys) -> dict:
    args = build_parser().parse_args(["status", "--json", "--interval", "0"])
    args.handler(args, settings)
    return json.loads(capsys.readouterr().out)


def test_a_stopped_stage_shows_its_records_in_flight_and_the_age_of_the_oldest(
    settings, layout, capsys
):
    ten_minutes_ago = int(time.time() * 1000) - 600_000
    # Five webhooks written 10 minutes ago, one second apart; the detector read two.
    batches = [[b"a", b"b"], [b"c", b"d", b"e"]]
    transactional_batches(settings, layout.webhooks, batches, ten_minutes_ago)
    group = f"{settings.kafka.topic_prefix}detector"
    stopped = consumer(settings.kafka, group)
    stopped.commit(offsets=[TopicPartition(layout.webhooks, 0, 2)], asynchronous=False)

    (stage,) = [s for s in status_json(settings, capsys)["stages"] if s["group"] == group]
    # Offset 2 is the first transaction's marker: the oldest in flight is "c" at offset 3,
    # written 598 s ago (lag counts the marker inside the backlog: 6 - 2).
    assert stage["in_flight"] == 4
    assert 598 <= stage["oldest_in_flight_age_s"] < 660

    stopped.commit(offsets=[TopicPartition(layout.webhooks, 0, 6)], asynchronous=False)
    stopped.close()
    (stage,) = [s for s in status_json(settings, capsys)["stages"] if s["group"] == group]
    assert (stage["in_flight"], stage["oldest_in_flight_age_s"]) == (0, None)
