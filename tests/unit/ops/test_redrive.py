"""Redrive: where each dead letter goes back, with which headers, in one transaction."""

import pytest
from confluent_kafka import KafkaError, KafkaException

from mediaflow.config import Settings
from mediaflow.errors import ErrorKind, MediaflowError, ProviderUnavailable
from mediaflow.kafka import headers as h
from mediaflow.kafka.records import InRecord
from mediaflow.kafka.retry import DeadLetter
from mediaflow.kafka.routing import FailureRouter
from mediaflow.ops import redrive
from mediaflow.ops.dlq import DeadLetterView, decode_dead_letter
from tests.support.dead_letters import (
    CODEC,
    LAYOUT,
    NOW,
    ProducerFailingMidBatch,
    dead_letter,
    request,
)
from tests.support.projection import stored


def test_redrive_goes_to_the_first_retry_tier_with_provenance_and_reset_retry_headers():
    retry_junk = h.encode({h.ATTEMPT: 3, h.DUE_AT: 1})
    view = dead_letter(CODEC.encode(request()), extra=retry_junk)
    plan = redrive.plan_redrive([view], LAYOUT, operator="ana", redrive_id="r-1")
    (item,) = plan.items
    sent = h.to_dict(item.headers)
    assert item.topic == LAYOUT.retry_tiers[0].topic
    assert sent[h.REDRIVE_ID] == "r-1" and sent[h.REDRIVE_OPERATOR] == "ana"
    assert sent[h.REDRIVE_ORIGINAL_OFFSET] == "40" and sent[h.ATTEMPT] == "1"
    assert h.DUE_AT not in sent and not any(k.startswith("dlq.") for k in sent)


def test_to_original_sends_a_download_request_back_to_the_request_topic():
    view = dead_letter(CODEC.encode(request()))
    plan = redrive.plan_redrive([view], LAYOUT, operator="ana", to_original=True)
    assert plan.items[0].topic == LAYOUT.download_requests


def test_a_record_that_failed_again_after_a_redrive_is_refused_without_force():
    looped = dead_letter(CODEC.encode(request()), extra=h.encode({h.REDRIVE_ID: "r-0"}))
    assert looped.redriven_before
    assert redrive.plan_redrive([looped], LAYOUT, operator="ana").refused == (looped,)
    assert len(redrive.plan_redrive([looped], LAYOUT, operator="ana", force=True).items) == 1


def test_a_dead_letter_whose_value_was_left_out_is_refused_until_its_original_is_back():
    record = InRecord(LAYOUT.download_requests, 1, 40, b"m-1", b"x" * 5000, [], NOW)
    router = FailureRouter("downloader", "g", LAYOUT.dead_letters, max_record_bytes=2000)
    out = router.route(record, DeadLetter(ErrorKind.EXPIRED, "gone", 1, None), NOW, "m-1")
    omitted = decode_dead_letter(
        CODEC, partition=0, offset=0, timestamp_ms=0, key=b"m-1", value=None, headers=out.headers
    )
    assert out.value is None and omitted.value_omitted
    plan = redrive.plan_redrive([omitted], LAYOUT, operator="ana", force=True)
    assert plan.items == () and plan.refused == (omitted,)
    assert f"no longer on {LAYOUT.download_requests}" in redrive.why_refused(omitted)
    # A record whose value is really empty (a tombstone) is no omitted one.
    assert not dead_letter(None).value_omitted


def test_the_redriven_event_names_media_redrive_and_target():
    plan = redrive.plan_redrive([dead_letter(CODEC.encode(request()))], LAYOUT, operator="ana")
    event = redrive.redriven_event(plan.items[0], plan)
    assert (event.media_id, event.redrive_id, event.operator) == ("m-1", plan.redrive_id, "ana")


def test_a_redrive_that_fails_mid_batch_aborts_its_transaction():
    producer = ProducerFailingMidBatch(KafkaException(KafkaError(KafkaError._TIMED_OUT, "x")))
    views = [dead_letter(CODEC.encode(request(f"m-{i}")), offset=i) for i in range(3)]
    plan = redrive.plan_redrive(views, LAYOUT, operator="ana")
    with pytest.raises(MediaflowError):
        redrive.execute_redrive(Settings(), LAYOUT, CODEC, plan, producer=producer)
    assert producer.calls[-1] == "abort_transaction"
    assert producer.produced == []


def notification_dead_letter(original_topic: str) -> DeadLetterView:
    """The dead letter of a notification that failed for good, as the notifier writes it."""
    record = InRecord(
        topic=original_topic,
        partition=2,
        offset=7,
        key=b"m-1",
        value=CODEC.encode(stored("m-1", 5)),
        headers=[],
        timestamp=NOW,
    )
    router = FailureRouter("notifier", "mediaflow-notifier", LAYOUT.dead_letters)
    error = ProviderUnavailable("callback answered 500")
    out = router.route(
        record, DeadLetter(ErrorKind.RETRIES_EXHAUSTED, "gave up", 6, error), NOW, "m-1"
    )
    return decode_dead_letter(
        CODEC,
        partition=0,
        offset=3,
        timestamp_ms=h.millis(NOW),
        key=b"m-1",
        value=out.value,
        headers=out.headers,
    )


@pytest.mark.parametrize("where", ["media_events", "notify_tier"])
def test_a_notification_is_redriven_to_the_notifier_alone_and_leaves_the_media_as_it_is(
    where: str,
) -> None:
    # Back on media.events every consumer would read the event again, and a MediaRedriven
    # would make the projection show a dead-lettered media as in flight for ever.
    topic = LAYOUT.media_events if where == "media_events" else LAYOUT.notify_retry_tiers[-1].topic
    view = notification_dead_letter(topic)
    for to_original in (False, True):
        plan = redrive.plan_redrive([view], LAYOUT, operator="ana", to_original=to_original)
        (item,) = plan.items
        assert item.topic == LAYOUT.notify_retry_tiers[0].topic
        assert redrive.redriven_event(item, plan) is None
