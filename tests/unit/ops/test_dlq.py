from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import KafkaError, KafkaException

from mediaflow.codec import AvroCodec
from mediaflow.config import KafkaSettings, Settings
from mediaflow.errors import ErrorKind, MediaExpired, MediaflowError
from mediaflow.events import MediaDownloadRequested, MediaInfo, MediaSource, MediaType
from mediaflow.kafka import headers as h
from mediaflow.kafka.records import InRecord
from mediaflow.kafka.retry import DeadLetter
from mediaflow.kafka.routing import FailureRouter
from mediaflow.kafka.topics import load_layout
from mediaflow.ops import dlq
from tests.support.fake_kafka import FakeProducer

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
CODEC = AvroCodec()
LAYOUT = load_layout(KafkaSettings())


def request(media_id="m-1", client="2", media_type=MediaType.IMAGE) -> MediaDownloadRequested:
    info = MediaInfo(
        provider="wapi",
        client_id=client,
        instance_id="inst-1",
        message_id="msg",
        chat_id="chat",
        media_type=media_type,
    )
    return MediaDownloadRequested(
        event_id="e",
        media_id=media_id,
        occurred_at=NOW,
        stage="detector",
        source_event_id="w",
        info=info,
        source=MediaSource(media_key="c2VjcmV0", url="https://x/y?sig=1"),
    )


def dead_letter(value: bytes | None, *, kind=ErrorKind.EXPIRED, offset=0, extra=(), at=NOW):
    record = InRecord(
        topic=LAYOUT.download_requests,
        partition=1,
        offset=40,
        key=b"m-1",
        value=value,
        headers=list(extra),
        timestamp=at,
    )
    router = FailureRouter("downloader", "mediaflow-downloader", LAYOUT.dead_letters)
    out = router.route(record, DeadLetter(kind, "gone", 1, MediaExpired("gone")), at, "m-1")
    return dlq.decode_dead_letter(
        CODEC,
        partition=0,
        offset=offset,
        timestamp_ms=h.millis(at),
        key=b"m-1",
        value=out.value,
        headers=out.headers,
    )


def test_a_dead_letter_is_decoded_with_its_headers_and_payload_fields():
    view = dead_letter(CODEC.encode(request()))
    assert (view.stage, view.error_kind, view.client_id, view.media_type, view.media_id) == (
        "downloader",
        "expired",
        "2",
        "image",
        "m-1",
    )
    assert view.original_topic == LAYOUT.download_requests and view.original_offset == 40


def test_show_never_prints_the_media_key_or_the_signed_url():
    detail = dead_letter(CODEC.encode(request())).detail()
    text = str(detail)
    assert "c2VjcmV0" not in text and "sig=1" not in text


def test_an_undecodable_value_is_shown_as_length_and_hex_prefix():
    view = dead_letter(b"\x00garbage")
    detail = view.detail()
    assert (
        view.decode_error
        and detail["value_bytes"] == 8
        and detail["value_hex_prefix"] == "00676172626167" + "65"
    )


def test_filters_select_by_kind_client_type_and_time():
    view = dead_letter(CODEC.encode(request()))
    assert dlq.DlqFilter(kind="expired", client="2", media_type="image").matches(view)
    assert not dlq.DlqFilter(kind="mac_mismatch").matches(view)
    assert not dlq.DlqFilter(since=NOW + timedelta(seconds=1)).matches(view)
    assert dlq.DlqFilter(since=NOW, until=NOW + timedelta(seconds=1)).matches(view)
    assert dlq.DlqFilter(ids=frozenset({"0:0"})).matches(view)


def test_stats_group_by_kind_and_stage_with_first_last_and_example():
    views = [
        dead_letter(CODEC.encode(request()), offset=0, at=NOW),
        dead_letter(CODEC.encode(request()), offset=1, at=NOW + timedelta(minutes=5)),
        dead_letter(b"x", kind=ErrorKind.UNDECODABLE, offset=2),
    ]
    rows = dlq.stats(views)
    assert [(r["kind"], r["count"]) for r in rows] == [("expired", 2), ("undecodable", 1)]
    assert rows[0]["first"] == NOW and rows[0]["last"] == NOW + timedelta(minutes=5)
    assert rows[0]["example"] == "0:1"


def test_redrive_goes_to_the_first_retry_tier_with_provenance_and_reset_retry_headers():
    retry_junk = h.encode({h.ATTEMPT: 3, h.DUE_AT: 1})
    view = dead_letter(CODEC.encode(request()), extra=retry_junk)
    plan = dlq.plan_redrive([view], LAYOUT, operator="ana", redrive_id="r-1")
    (item,) = plan.items
    sent = h.to_dict(item.headers)
    assert item.topic == LAYOUT.retry_tiers[0].topic
    assert sent[h.REDRIVE_ID] == "r-1" and sent[h.REDRIVE_OPERATOR] == "ana"
    assert sent[h.REDRIVE_ORIGINAL_OFFSET] == "40" and sent[h.ATTEMPT] == "1"
    assert h.DUE_AT not in sent and not any(k.startswith("dlq.") for k in sent)


def test_to_original_sends_a_download_request_back_to_the_request_topic():
    view = dead_letter(CODEC.encode(request()))
    plan = dlq.plan_redrive([view], LAYOUT, operator="ana", to_original=True)
    assert plan.items[0].topic == LAYOUT.download_requests


def test_a_record_that_failed_again_after_a_redrive_is_refused_without_force():
    looped = dead_letter(CODEC.encode(request()), extra=h.encode({h.REDRIVE_ID: "r-0"}))
    assert looped.redriven_before
    assert dlq.plan_redrive([looped], LAYOUT, operator="ana").refused == (looped,)
    assert len(dlq.plan_redrive([looped], LAYOUT, operator="ana", force=True).items) == 1


def test_the_redriven_event_names_media_redrive_and_target():
    plan = dlq.plan_redrive([dead_letter(CODEC.encode(request()))], LAYOUT, operator="ana")
    event = dlq.redriven_event(plan.items[0], plan)
    assert (event.media_id, event.redrive_id, event.operator) == ("m-1", plan.redrive_id, "ana")


def test_parse_time_accepts_iso_naive_as_utc_and_epoch_millis():
    assert dlq.parse_time("2026-05-04T12:00:00") == NOW
    assert dlq.parse_time("2026-05-04T12:00:00Z") == NOW
    assert dlq.parse_time(str(h.millis(NOW))) == NOW


class ProducerFailingMidBatch(FakeProducer):
    """Accepts the first record of a batch and refuses the second with ``error``."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error
        self.produced_in_batch = 0

    def begin_transaction(self):
        super().begin_transaction()
        self.produced_in_batch = 0

    def produce(self, *args, **kwargs):
        self.produced_in_batch += 1
        if self.produced_in_batch == 2:
            raise self.error
        super().produce(*args, **kwargs)


def dismissals(count: int) -> list:
    views = [dead_letter(CODEC.encode(request(f"m-{i}")), offset=i) for i in range(count)]
    return [dlq.dismissed_event(v, "ana", "spam") for v in views]


@pytest.mark.parametrize(
    "error",
    [
        KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "timed out")),
        KafkaException(KafkaError(KafkaError._STATE, "bad state", txn_requires_abort=True)),
        RuntimeError("a bug"),
    ],
    ids=["kafka-error", "abortable", "bug"],
)
def test_a_dismiss_that_fails_mid_batch_aborts_its_transaction(error):
    producer = ProducerFailingMidBatch(error)
    settings = Settings()
    with pytest.raises(type(error) if isinstance(error, RuntimeError) else MediaflowError):
        dlq.execute_dismiss(settings, LAYOUT, CODEC, dismissals(3), producer=producer)
    assert producer.calls[-1] == "abort_transaction"
    assert producer.produced == [] and "commit_transaction" not in producer.calls


def test_a_redrive_that_fails_mid_batch_aborts_its_transaction():
    producer = ProducerFailingMidBatch(KafkaException(KafkaError(KafkaError._TIMED_OUT, "x")))
    views = [dead_letter(CODEC.encode(request(f"m-{i}")), offset=i) for i in range(3)]
    plan = dlq.plan_redrive(views, LAYOUT, operator="ana")
    with pytest.raises(MediaflowError):
        dlq.execute_redrive(Settings(), LAYOUT, CODEC, plan, producer=producer)
    assert producer.calls[-1] == "abort_transaction"
    assert producer.produced == []
