"""The detector on real Kafka: every media exactly once, even when killed mid-batch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from mediaflow.config import Settings
from mediaflow.events import MediaDetected, MediaDownloadRequested
from mediaflow.kafka.topics import load_layout
from tests.support.detector import (
    CODEC,
    TRACE,
    as_record,
    envelope,
    image_body,
    media_id_of,
    wait_until_some_committed,
)
from tests.support.kafka import produce, read_all
from tests.support.processes import spawn_role, stop

pytestmark = pytest.mark.integration


def test_sigkill_mid_batch_then_restart_yields_every_media_exactly_once_on_both_topics(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(batch_max_records=5, instance_name="detector-crash")
    layout = load_layout(settings.kafka)
    webhooks = [envelope(image_body(f"3EB0{i:016X}")) for i in range(400)]
    produce(settings, layout.webhooks, [as_record(w) for w in webhooks])
    expected = {media_id_of(w) for w in webhooks}

    first = spawn_role("detector", settings)
    try:
        wait_until_some_committed(settings, layout.media_events)
    finally:
        first.kill()  # SIGKILL: no shutdown, an open transaction is left behind
        first.wait(timeout=10)
    seen_before_restart = len(read_all(settings, layout.media_events))
    assert 0 < seen_before_restart < len(expected), "the kill must land mid-way for this test"

    second = spawn_role("detector", settings, "--idle-exit", "3")
    try:
        assert second.wait(timeout=180) == 0
    finally:
        stop(second)

    requests = Counter(m.key().decode() for m in read_all(settings, layout.download_requests))
    detected = Counter(m.key().decode() for m in read_all(settings, layout.media_events))
    assert set(requests) == set(detected) == expected
    assert set(requests.values()) == set(detected.values()) == {1}


def test_one_webhook_delivered_three_times_gives_one_request_per_delivery_all_with_one_media_id(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(instance_name="detector-dup")
    layout = load_layout(settings.kafka)
    body = image_body("3EB0AAAABBBBCCCCDDDD")
    first = envelope(body)
    redelivered_by_provider = envelope(body)  # same body, new envelope (new event id)
    deliveries = [first, first, redelivered_by_provider]
    produce(settings, layout.webhooks, [as_record(w) for w in deliveries])

    proc = spawn_role("detector", settings, "--idle-exit", "2")
    try:
        assert proc.wait(timeout=120) == 0
    finally:
        stop(proc)

    requests = [
        CODEC.decode(m.value(), MediaDownloadRequested)
        for m in read_all(settings, layout.download_requests)
    ]
    detected = [
        CODEC.decode(m.value(), MediaDetected) for m in read_all(settings, layout.media_events)
    ]
    assert len(requests) == len(detected) == 3
    assert {r.media_id for r in requests} == {d.media_id for d in detected} == {media_id_of(first)}
    # The envelope read twice yields identical event ids: consumers can drop the copy.
    assert len({r.event_id for r in requests}) == 2
    assert {r.traceparent for r in requests} == {TRACE}
