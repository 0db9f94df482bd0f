"""``mediaflow status`` on the real stack: lag of a stopped consumer group."""

import json

import pytest
from confluent_kafka import Producer, TopicPartition

from mediaflow.cli import build_parser
from mediaflow.kafka.clients import consumer

pytestmark = pytest.mark.integration


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
    assert (row["committed"], row["high"], row["lag"]) == (2, 5, 3)
    assert data["broker"] == "ok" and data["s3"] == "ok"
