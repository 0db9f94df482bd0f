from datetime import UTC, datetime, timedelta

from mediaflow.errors import ErrorKind, MediaExpired, ProviderUnavailable
from mediaflow.kafka import headers as h
from mediaflow.kafka.records import InRecord
from mediaflow.kafka.retry import DeadLetter, RetryLater, RetryTier
from mediaflow.kafka.routing import FailureRouter

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
ROUTER = FailureRouter(
    stage="downloader", group_id="mediaflow-downloader", dlq_topic="mediaflow.dlq"
)


def record(**kwargs) -> InRecord:
    base = dict(
        topic="media.download-requested",
        partition=4,
        offset=1234,
        key=b"media-1",
        value=b"\xc3\x01original-bytes",
        headers=[("traceparent", b"00-abc-def-01")],
        timestamp=NOW - timedelta(minutes=1),
    )
    base.update(kwargs)
    return InRecord(**base)


def test_dead_letter_keeps_key_value_and_headers_and_adds_the_contract():
    error = MediaExpired("CDN answered 410 for https://mmg.whatsapp.net/x.enc?oh=SIGNATURE")
    out = ROUTER.route(record(), DeadLetter(error.kind, error.message, 1, error), NOW, "media-1")
    headers = h.to_dict(out.headers)
    assert (out.topic, out.key, out.value) == (
        "mediaflow.dlq",
        b"media-1",
        b"\xc3\x01original-bytes",
    )
    assert headers["traceparent"] == "00-abc-def-01"
    assert headers[h.DLQ_ORIGINAL_TOPIC] == "media.download-requested"
    assert headers[h.DLQ_ORIGINAL_PARTITION] == "4"
    assert headers[h.DLQ_ORIGINAL_OFFSET] == "1234"
    assert headers[h.DLQ_ORIGINAL_TIMESTAMP] == str(h.millis(NOW - timedelta(minutes=1)))
    assert headers[h.DLQ_CONSUMER_GROUP] == "mediaflow-downloader"
    assert headers[h.DLQ_STAGE] == "downloader"
    assert headers[h.DLQ_ERROR_KIND] == "expired"
    assert headers[h.DLQ_MEDIA_ID] == "media-1"
    assert headers[h.DLQ_ATTEMPT] == "1"


def test_dead_letter_messages_never_carry_url_signatures():
    error = MediaExpired("CDN answered 410 for https://mmg.whatsapp.net/x.enc?oh=SIGNATURE&oe=1")
    out = ROUTER.route(record(), DeadLetter(error.kind, error.message, 1, error), NOW)
    assert b"SIGNATURE" not in b"".join(v for _, v in out.headers)


def test_retry_record_carries_attempt_due_time_and_first_failure():
    error = ProviderUnavailable("W-API answered 500")
    due = NOW + timedelta(seconds=10)
    out = ROUTER.route(record(), RetryLater(RetryTier("retry.10s", 10), due, 2, error), NOW)
    headers = h.to_dict(out.headers)
    assert out.topic == "retry.10s" and out.value == b"\xc3\x01original-bytes"
    assert headers[h.ATTEMPT] == "2"
    assert headers[h.DUE_AT] == str(h.millis(due))
    assert headers[h.FIRST_FAILURE_AT] == str(h.millis(NOW))
    assert headers[h.LAST_ERROR_KIND] == "server_error"


def test_a_second_retry_keeps_the_first_failure_time_and_replaces_old_retry_headers():
    first_failure = NOW - timedelta(minutes=5)
    retried = record(
        headers=[(h.ATTEMPT, b"2"), (h.FIRST_FAILURE_AT, str(h.millis(first_failure)).encode())],
        attempt=2,
        first_failure_at=first_failure,
    )
    error = ProviderUnavailable("again")
    out = ROUTER.route(retried, RetryLater(RetryTier("retry.1m", 60), NOW, 3, error), NOW)
    names = [k for k, _ in out.headers]
    assert names.count(h.ATTEMPT) == 1
    assert h.to_dict(out.headers)[h.FIRST_FAILURE_AT] == str(h.millis(first_failure))


def test_dead_letter_after_retries_records_the_first_failure_time():
    first_failure = NOW - timedelta(hours=1)
    error = ProviderUnavailable("x")
    decision = DeadLetter(ErrorKind.RETRIES_EXHAUSTED, "gave up", 5, error)
    out = ROUTER.route(record(first_failure_at=first_failure, attempt=5), decision, NOW)
    headers = h.to_dict(out.headers)
    assert headers[h.DLQ_FIRST_FAILURE_AT] == str(h.millis(first_failure))
    assert headers[h.DLQ_ERROR_KIND] == "retries_exhausted"
    assert headers[h.DLQ_ATTEMPT] == "5"


def test_a_value_too_large_for_the_dead_letter_topic_is_referenced_not_copied():
    router = FailureRouter("detector", "g", "mediaflow.dlq", max_record_bytes=10_000)
    error = MediaExpired("gone")
    big = record(value=b"x" * 20_000)
    out = router.route(big, DeadLetter(error.kind, error.message, 1, error), NOW, "media-1")
    headers = h.to_dict(out.headers)
    assert out.value is None and out.key == b"media-1"
    assert "20000 bytes" in headers[h.DLQ_VALUE_OMITTED]
    assert (headers[h.DLQ_ORIGINAL_TOPIC], headers[h.DLQ_ORIGINAL_OFFSET]) == (
        "media.download-requested",
        "1234",
    )
    assert headers[h.DLQ_ERROR_KIND] == "expired"
    assert len(out.key) + sum(len(k) + len(v) for k, v in out.headers) < 10_000


def test_a_value_that_fits_is_copied_whole():
    router = FailureRouter("detector", "g", "mediaflow.dlq", max_record_bytes=30_000)
    error = MediaExpired("gone")
    out = router.route(record(value=b"x" * 20_000), DeadLetter(error.kind, "g", 1, error), NOW)
    assert out.value == b"x" * 20_000
    assert h.DLQ_VALUE_OMITTED not in h.to_dict(out.headers)


def test_an_internal_dead_letter_is_referenced_too_when_its_value_is_too_large():
    router = FailureRouter("detector", "g", "mediaflow.dlq", max_record_bytes=10_000)
    out = router.internal(record(value=b"x" * 20_000), RuntimeError("boom"))
    assert out.value is None
    assert h.to_dict(out.headers)[h.DLQ_ERROR_KIND] == "internal"
