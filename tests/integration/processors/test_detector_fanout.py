"""One webhook can neither flood the pipeline nor jam it (real Kafka).

A body built to fan out (some 40,000 empty media items nested in wrappers)
becomes one dead letter, not one per item; a dead letter too large for its
topic is written with a reference to the original instead of a copy.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from mediaflow.config import Settings
from mediaflow.kafka import headers as h
from mediaflow.kafka.topics import load_layout
from mediaflow.processors.detector import build_worker
from tests.support.detector import as_record, envelope, fanout_body, image_body
from tests.support.kafka import produce, read_all

pytestmark = pytest.mark.integration

KEY = b"3B6XIW-ZTS923-GEAY6V|5511988887777"


async def drain(settings: Settings) -> None:
    await build_worker(settings).run(idle_exit_s=2)


async def test_a_1mb_body_of_nested_empty_media_items_is_one_dead_letter(settings) -> None:
    layout = load_layout(settings.kafka)
    flood = envelope(fanout_body(1_000_000))
    after = envelope(image_body("3EB0C767D26A1B2C4F8E"))
    _, value, headers = as_record(flood)
    produce(settings, layout.webhooks, [(KEY, value, headers), (KEY, *as_record(after)[1:])])
    await drain(settings)

    [dead] = read_all(settings, layout.dead_letters)
    dlq_headers = h.to_dict(dead.headers())
    assert dlq_headers[h.DLQ_ERROR_KIND] == "too_many_media"
    assert "MEDIAFLOW_MAX_MEDIA_PER_WEBHOOK" in dlq_headers[h.DLQ_ERROR_MESSAGE]
    assert dead.value() == value  # it fits the dead-letter topic: kept whole
    # Only the webhook behind it produced anything: one request, one detected event.
    assert len(read_all(settings, layout.download_requests)) == 1
    assert len(read_all(settings, layout.media_events)) == 1


async def test_a_dead_letter_too_large_for_its_topic_references_the_original(settings) -> None:
    layout = load_layout(settings.kafka)
    # An envelope just under the 2 MiB record limit: with the dead-letter headers
    # added, a copy would be over it, and Kafka would refuse the whole batch.
    poison = dataclasses.replace(envelope(image_body("3EB0C767D26A1B2C4F8F")), body=b"")
    size = 2 * 1024 * 1024 - len(as_record(poison)[1]) - 400
    poison = dataclasses.replace(poison, body=b"{" * size)
    _, value, headers = as_record(poison)
    after = envelope(image_body("3EB0C767D26A1B2C4F8E"))
    produce(settings, layout.webhooks, [(KEY, value, headers), (KEY, *as_record(after)[1:])])
    await asyncio.wait_for(drain(settings), timeout=120)

    [dead] = read_all(settings, layout.dead_letters)
    dlq_headers = h.to_dict(dead.headers())
    assert dead.value() is None
    assert "does not fit the dead-letter topic" in dlq_headers[h.DLQ_VALUE_OMITTED]
    assert dlq_headers[h.DLQ_ERROR_KIND] == "invalid_payload"
    [original] = [
        m
        for m in read_all(settings, layout.webhooks)
        if m.partition() == int(dlq_headers[h.DLQ_ORIGINAL_PARTITION])
        and m.offset() == int(dlq_headers[h.DLQ_ORIGINAL_OFFSET])
    ]
    assert original.value() == value
    # The partition moved on: the webhook behind it was processed.
    assert len(read_all(settings, layout.download_requests)) == 1
