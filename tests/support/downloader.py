"""Helpers for driving the downloader on the real stack: a tenants file for the
fake W-API, download requests built from simulator media, and readers of what
the run left behind (events, dead letters, objects, open multipart uploads)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.events import MediaDownloadRequested, MediaInfo, MediaSource
from mediaflow.kafka import headers as h
from mediaflow.kafka.topics import load_layout
from mediaflow.processors.downloader.stage import STAGE
from mediaflow.storage.s3 import s3_client
from simulator import SampleMedia
from tests.support.kafka import produce, read_all

INSTANCE = "3B6XIW-ZTS923-GEAY6V"
TOKEN = "sim-token-0123456789"
CODEC = AvroCodec()


async def run_downloader(settings: Settings, *, idle_exit_s: float | None = None) -> None:
    """Run the downloader in this process, wired as ``mediaflow run downloader`` wires it."""
    async with STAGE.open(settings, STAGE.clients(settings)) as worker:
        await worker.run(idle_exit_s=idle_exit_s)


def tenants_file(tmp_path: Path, fetch_order: list[str] | None = None) -> Path:
    token = tmp_path / "wapi.token"
    token.write_text(TOKEN)
    order = f"fetch_order = {fetch_order!r}\n".replace("'", '"') if fetch_order else ""
    path = tmp_path / f"tenants-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(
        f'[tenants."{INSTANCE}"]\nclient_id = "7"\nprovider = "wapi"\n'
        f'wapi_token_file = "{token}"\n{order}'
    )
    return path


def request_for(media: SampleMedia, *, media_id: str | None = None) -> MediaDownloadRequested:
    info = MediaInfo(
        provider="wapi",
        client_id="7",
        instance_id=INSTANCE,
        message_id=f"3EB0{uuid.uuid4().hex[:12].upper()}",
        chat_id="5511988887777",
        media_type=media.media_type,
        media_variant=media.variant,
        mimetype=media.mimetype,
        file_name=media.file_name,
        declared_length=media.size,
        file_sha256=media.file_sha256,
        message_timestamp=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    return MediaDownloadRequested(
        event_id=str(uuid.uuid4()),
        media_id=media_id or uuid.uuid4().hex,
        occurred_at=datetime.now(UTC).replace(microsecond=0),
        stage="detector",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        source_event_id=str(uuid.uuid4()),
        info=info,
        source=MediaSource(
            media_key=media.media_key_b64,
            file_enc_sha256=media.file_enc_sha256,
            direct_path=media.direct_path,
        ),
    )


def send(settings: Settings, requests: list[MediaDownloadRequested]) -> None:
    topic = load_layout(settings.kafka).download_requests
    produce(settings, topic, [(r.media_id, CODEC.encode(r)) for r in requests])


def events(settings: Settings) -> list[Any]:
    return [
        CODEC.decode(m.value())
        for m in read_all(settings, load_layout(settings.kafka).media_events)
    ]


def of_type(settings: Settings, kind: type) -> list[Any]:
    return [e for e in events(settings) if isinstance(e, kind)]


def dead_letters(settings: Settings) -> list[dict[str, str]]:
    return [
        h.to_dict(m.headers()) for m in read_all(settings, load_layout(settings.kafka).dead_letters)
    ]


def objects(settings: Settings) -> list[dict[str, Any]]:
    client = s3_client(settings.s3)
    listing = client.list_objects_v2(Bucket=settings.s3.bucket).get("Contents", [])
    return [
        {"Key": o["Key"], **client.head_object(Bucket=settings.s3.bucket, Key=o["Key"])}
        for o in listing
    ]


def open_uploads(settings: Settings) -> list[Any]:
    """Multipart uploads still open in the test's bucket.

    S3Proxy's filesystem backend answers 500 when this listing races a part
    being written (a part file without its attributes yet): ask again.
    """
    client = s3_client(settings.s3)
    for _ in range(20):
        try:
            return client.list_multipart_uploads(Bucket=settings.s3.bucket).get("Uploads", [])
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 500:
                raise
            time.sleep(0.2)
    raise AssertionError("S3Proxy kept answering 500 to ListMultipartUploads")


def settings_for(
    make_settings: Callable[..., Settings], wapi: str, cdn: str, tenants: Path, **extra: object
) -> Settings:
    return make_settings(
        wapi_base_url=wapi,
        cdn_base_url=cdn,
        tenants_file=str(tenants),
        download_concurrency=4,
        s3_multipart_threshold=5 * 1024 * 1024,
        s3_part_size=5 * 1024 * 1024,
        read_timeout_s=5,
        **extra,
    )


__all__ = [
    "INSTANCE",
    "TOKEN",
    "CODEC",
    "dead_letters",
    "events",
    "objects",
    "of_type",
    "open_uploads",
    "request_for",
    "send",
    "settings_for",
    "tenants_file",
]
