"""The headers of a media event are written the same way for every event type."""

from datetime import UTC, datetime

from mediaflow.codec import AvroCodec
from mediaflow.events import MediaDeadLettered, MediaDownloadFailed, MediaStored
from mediaflow.kafka import headers as h
from mediaflow.kafka.eventlog import event_record
from mediaflow.logging import register_secrets

CODEC = AvroCodec()
NOW = datetime(2026, 11, 29, tzinfo=UTC)
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
COMMON = {"media_id": "m-1", "occurred_at": NOW, "stage": "downloader", "traceparent": TRACE}


def test_a_success_event_carries_id_fingerprint_and_trace_and_is_keyed_by_media_id():
    event = MediaStored(
        event_id="e-1",
        **COMMON,
        bucket="b",
        key="k",
        size=1,
        sha256="ab",
        content_type="image/jpeg",
        fetch_path="direct",
        duration_ms=3,
        attempt=1,
    )
    out = event_record("media.events", event, CODEC)
    assert (out.topic, out.key) == ("media.events", b"m-1")
    assert CODEC.decode(out.value) == event
    assert h.to_dict(out.headers) == {
        h.EVENT_ID: "e-1",
        h.SCHEMA_FINGERPRINT: CODEC.fingerprint_of(MediaStored).hex(),
        h.TRACEPARENT: TRACE,
    }


def test_a_failure_event_adds_its_kind_and_scrubbed_error_text():
    register_secrets(["tok-eventlog-secret"])
    message = "W-API said tok-eventlog-secret at https://cdn/x?sig=abc: quota \ud800 " + "x" * 2000
    for event in (
        MediaDeadLettered(
            event_id="e-2", **COMMON, error_kind="provider_error", error_message=message, attempt=1
        ),
        MediaDownloadFailed(
            event_id="e-3",
            **COMMON,
            attempt=1,
            error_kind="provider_error",
            error_message=message,
            retryable=True,
            next_due_at=NOW,
        ),
    ):
        headers = h.to_dict(event_record("media.events", event, CODEC).headers)
        assert headers[h.ERROR_KIND] == "provider_error"
        error = headers[h.ERROR]
        assert "tok-eventlog-secret" not in error and "sig=abc" not in error
        assert "quota \ufffd" in error and len(error) == 1000
