"""Reconcile and reprocess against the real Kafka, S3 and projection store.

The projection is filled by applying events to the store directly (the way
the projection consumer does), so the test needs no running stage.
"""

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from mediaflow.cli import build_parser
from mediaflow.codec import AvroCodec
from mediaflow.events import (
    MediaDetected,
    MediaDownloadRequested,
    MediaInfo,
    MediaSource,
    MediaStored,
    MediaType,
    utcnow,
)
from mediaflow.storage.projection import LogRecord, open_store
from mediaflow.storage.s3 import s3_client
from tests.support.kafka import produce, read_all

pytestmark = pytest.mark.integration
CODEC = AvroCodec()
SHA = hashlib.sha256(b"abc").hexdigest()  # the objects these tests write hold b"abc"


def info(media_id: str) -> MediaInfo:
    return MediaInfo(
        provider="wapi",
        client_id="2",
        instance_id="inst-1",
        message_id=media_id,
        chat_id="chat",
        media_type=MediaType.AUDIO,
    )


def common(media_id: str, at: datetime, n: int) -> dict:
    return {"event_id": f"{media_id}-{n}", "media_id": media_id, "occurred_at": at, "stage": "test"}


def detected_and_requested(settings, layout, media_id: str, at: datetime) -> list:
    request = MediaDownloadRequested(
        **common(media_id, at, 0),
        source_event_id="w",
        info=info(media_id),
        source=MediaSource(direct_path="/d"),
    )
    produce(settings, layout.download_requests, [(media_id, CODEC.encode(request))])
    return [MediaDetected(**common(media_id, at, 1), source_event_id="w", info=info(media_id))]


def stored(settings, media_id: str, at: datetime) -> MediaStored:
    return MediaStored(
        **common(media_id, at, 2),
        bucket=settings.s3.bucket,
        key=f"cliente_2/{media_id}.ogg",
        size=3,
        sha256=SHA,
        content_type="audio/ogg",
        fetch_path="direct",
        duration_ms=1,
        attempt=1,
    )


def project(settings, layout, events) -> None:
    store = open_store(settings.projection_db_url)
    try:
        store.apply_batch([LogRecord(layout.media_events, 0, i, e) for i, e in enumerate(events)])
    finally:
        store.close()


def run(settings, capsys, *argv):
    capsys.readouterr()
    args = build_parser().parse_args([*argv, "--json"])
    code = args.handler(args, settings)
    return code, json.loads(capsys.readouterr().out)


def test_reconcile_finds_an_object_deleted_behind_the_systems_back_and_re_requests_it(
    settings, layout, capsys
):
    now = utcnow()
    events = detected_and_requested(settings, layout, "m-gone", now)
    events += detected_and_requested(settings, layout, "m-kept", now)
    events += [stored(settings, "m-gone", now), stored(settings, "m-kept", now)]
    project(settings, layout, events)
    s3 = s3_client(settings.s3)
    s3.put_object(
        Bucket=settings.s3.bucket,
        Key="cliente_2/m-kept.ogg",
        Body=b"abc",
        Metadata={"sha256": SHA, "media-id": "m-kept"},
    )

    code, report = run(settings, capsys, "reconcile")
    assert code == 1
    assert [(f["media_id"], f["problem"]) for f in report["findings"]] == [("m-gone", "missing")]

    code, report = run(settings, capsys, "reconcile", "--fix")
    assert (code, report["fixed"]) == (0, ["m-gone"])
    keys = [m.key() for m in read_all(settings, layout.download_requests)]
    assert sorted(keys) == [b"m-gone", b"m-gone", b"m-kept"]


def test_reconcile_reports_media_stuck_in_flight_longer_than_the_threshold(
    settings, layout, capsys
):
    old = utcnow() - timedelta(hours=2)
    project(settings, layout, detected_and_requested(settings, layout, "m-stuck", old))
    code, report = run(settings, capsys, "reconcile", "--older-than", "3600")
    assert code == 1
    assert [(f["media_id"], f["problem"]) for f in report["findings"]] == [("m-stuck", "stuck")]
    code, report = run(settings, capsys, "reconcile", "--older-than", str(3 * 3600))
    assert (code, report["findings"]) == (0, [])


def test_reprocess_re_emits_the_original_request_of_media_chosen_by_status(
    settings, layout, capsys
):
    now = datetime.now(UTC)
    project(settings, layout, detected_and_requested(settings, layout, "m-1", now))
    code, report = run(settings, capsys, "reprocess", "--status", "detected")
    assert (code, report["requested"]) == (0, ["m-1"])
    first, again = read_all(settings, layout.download_requests)
    assert again.value() == first.value() and again.key() == b"m-1"


def test_reprocess_reports_media_whose_request_is_gone(settings, layout, capsys):
    code, report = run(settings, capsys, "reprocess", "--media-id", "m-unknown")
    assert (code, report["not_found"]) == (1, ["m-unknown"])


def test_verify_bytes_finds_an_object_whose_bytes_changed_under_intact_metadata(
    settings, layout, capsys
):
    now = utcnow()
    events = []
    for media_id in ("m-good", "m-tampered"):
        events += detected_and_requested(settings, layout, media_id, now)
        events.append(stored(settings, media_id, now))
    project(settings, layout, events)
    s3 = s3_client(settings.s3)
    for media_id, body in (("m-good", b"abc"), ("m-tampered", b"abd")):
        s3.put_object(
            Bucket=settings.s3.bucket,
            Key=f"cliente_2/{media_id}.ogg",
            Body=body,
            Metadata={"sha256": SHA, "media-id": media_id},
        )

    code, report = run(settings, capsys, "reconcile")
    assert (code, report["findings"]) == (0, [])
    code, report = run(settings, capsys, "reconcile", "--verify-bytes")
    assert code == 1
    assert [(f["media_id"], f["problem"]) for f in report["findings"]] == [
        ("m-tampered", "content_mismatch")
    ]
    assert report["verified_bytes"] == 6
    code, report = run(settings, capsys, "reconcile", "--verify-bytes", "--sample", "1")
    assert report["verified_objects"] == 1
