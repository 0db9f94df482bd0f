"""A download failure's event carries the same secret-free message as its dead-letter header.

``MediaDownloadFailed.error_message`` and ``MediaDeadLettered.error_message``
reach the projection and the API's ``last_error_message``; they go through the
scrubber the dead-letter headers use.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mediaflow.codec import AvroCodec
from mediaflow.config import DownloaderSettings
from mediaflow.errors import MediaExpired, ProviderUnavailable
from mediaflow.events import (
    MediaDeadLettered,
    MediaDownloadFailed,
    MediaDownloadRequested,
    MediaInfo,
    MediaSource,
    MediaType,
)
from mediaflow.kafka.records import InRecord
from mediaflow.kafka.retry import DeadLetter, Decision, RetryLater, RetryTier
from mediaflow.logging import register_secrets
from mediaflow.processors.downloader.stage import DownloaderStage
from mediaflow.tenants import TenantRegistry

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
CODEC = AvroCodec()
TOKEN = f"wapi-token-{secrets.token_hex(8)}"
LEAKY = (
    f"W-API refused Bearer {TOKEN} for https://mmg.whatsapp.net/v/x.enc?oh=SIGNATURE&oe=1 "
    "via postgresql://u:p@ss@db/media"
)


def _stage() -> DownloaderStage:
    unused: Any = None  # failure_records touches neither the fetcher nor the store
    return DownloaderStage(
        codec=CODEC,
        fetcher=unused,
        store=unused,
        tenants=TenantRegistry({}),
        settings=DownloaderSettings(),
        media_events_topic="media.events",
    )


def _record() -> InRecord:
    request = MediaDownloadRequested(
        event_id="e-1",
        media_id="m-1",
        occurred_at=NOW,
        stage="detector",
        source_event_id="s-1",
        info=MediaInfo(
            provider="wapi",
            client_id="1",
            instance_id="I",
            message_id="M",
            chat_id="C",
            media_type=MediaType.IMAGE,
        ),
        source=MediaSource(direct_path="/v/x.enc"),
    )
    return InRecord("media.download-requested", 0, 7, b"m-1", CODEC.encode(request), [], NOW)


@pytest.mark.parametrize(
    "decision",
    [
        RetryLater(
            RetryTier("retry.10s", 10), NOW + timedelta(seconds=10), 1, ProviderUnavailable(LEAKY)
        ),
        DeadLetter(MediaExpired.kind, LEAKY, 5, MediaExpired(LEAKY)),
    ],
)
def test_a_failure_event_message_has_no_token_signature_or_password(decision: Decision) -> None:
    register_secrets([TOKEN])
    (out,) = _stage().failure_records(_record(), decision, NOW)
    event = CODEC.decode(out.value)
    assert isinstance(event, MediaDownloadFailed | MediaDeadLettered)
    assert event.error_message.startswith("W-API refused Bearer ****")
    for part in (TOKEN, "SIGNATURE", "p@ss", "ss@db"):
        assert part not in event.error_message
