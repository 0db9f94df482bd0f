"""Typed records for everything mediaflow writes to Kafka.

Each dataclass mirrors one Avro schema in ``schemas/`` (same name, same
fields, same order). :class:`mediaflow.codec.AvroCodec` turns them into Avro
single-object encoded bytes and back.

Flow of records::

    WebhookReceived        webhook receiver -> whatsapp.webhooks
    MediaDownloadRequested detector         -> media.download-requested (+ retry tiers)
    MediaDetected          detector         -> media.events
    MediaDownloadFailed    downloader       -> media.events
    MediaStored            downloader       -> media.events
    MediaDeadLettered      detector/downloader -> media.events
    MediaRedriven          operator CLI     -> media.events
    MediaDismissed         operator CLI     -> media.events
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


def utcnow() -> datetime:
    """Return the current time, timezone-aware UTC, at millisecond precision (Avro's)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def new_event_id() -> str:
    """Return a fresh random event id."""
    return str(uuid.uuid4())


class MediaType(StrEnum):
    """The five kinds of WhatsApp media, also the folder names in the bucket."""

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"
    STICKER = "sticker"


class Provider(StrEnum):
    """The webhook providers mediaflow understands."""

    WAPI = "wapi"
    EVOLUTION = "evolution"
    ZAPI = "zapi"


class Stage(StrEnum):
    """The stage that wrote an event or a dead letter."""

    WEBHOOK = "webhook"
    DETECTOR = "detector"
    DOWNLOADER = "downloader"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaInfo:
    """What a media is and where it came from. Holds no secrets."""

    provider: str
    client_id: str
    instance_id: str
    message_id: str
    chat_id: str
    sender_id: str | None = None
    sender_name: str | None = None
    from_me: bool = False
    is_group: bool = False
    media_type: MediaType
    media_variant: str | None = None
    mimetype: str | None = None
    file_name: str | None = None
    declared_length: int | None = None
    file_sha256: str | None = None
    caption: str | None = None
    message_timestamp: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaSource:
    """How to fetch a media. ``media_key`` is a secret and is never logged."""

    media_key: str | None = field(default=None, repr=False)
    file_enc_sha256: str | None = None
    direct_path: str | None = None
    url: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookReceived:
    """One webhook request as the provider sent it; ``body`` is byte for byte."""

    event_id: str
    provider: str
    client_id: str
    instance_id: str
    message_id: str | None = None
    chat_id: str | None = None
    event_type: str
    received_at: datetime
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaDownloadRequested:
    """Ask the downloader to fetch one media and store it."""

    event_id: str
    media_id: str
    occurred_at: datetime
    stage: str
    traceparent: str | None = None
    source_event_id: str
    info: MediaInfo
    source: MediaSource


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaDetected:
    """A media was found in a webhook."""

    event_id: str
    media_id: str
    occurred_at: datetime
    stage: str
    traceparent: str | None = None
    source_event_id: str
    info: MediaInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaDownloadFailed:
    """One download attempt failed; ``retryable`` says whether another is due."""

    event_id: str
    media_id: str
    occurred_at: datetime
    stage: str
    traceparent: str | None = None
    attempt: int
    error_kind: str
    error_message: str
    retryable: bool
    next_due_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaStored:
    """A verified object is in the bucket."""

    event_id: str
    media_id: str
    occurred_at: datetime
    stage: str
    traceparent: str | None = None
    bucket: str
    key: str
    size: int
    sha256: str
    content_type: str
    fetch_path: str
    duration_ms: int
    attempt: int
    info: MediaInfo | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaDeadLettered:
    """A stage gave up on a media; the reason is in ``error_kind``."""

    event_id: str
    media_id: str
    occurred_at: datetime
    stage: str
    traceparent: str | None = None
    error_kind: str
    error_message: str
    attempt: int
    info: MediaInfo | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaRedriven:
    """An operator sent a dead letter back for another try."""

    event_id: str
    media_id: str
    occurred_at: datetime
    stage: str
    traceparent: str | None = None
    redrive_id: str
    operator: str
    target_topic: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaDismissed:
    """An operator decided a dead letter will not be retried."""

    event_id: str
    media_id: str
    occurred_at: datetime
    stage: str
    traceparent: str | None = None
    operator: str
    reason: str | None = None


MediaEvent = (
    MediaDetected
    | MediaDownloadFailed
    | MediaStored
    | MediaDeadLettered
    | MediaRedriven
    | MediaDismissed
)
"""Everything that can appear on the media event log."""

Record = WebhookReceived | MediaDownloadRequested | MediaEvent
"""Everything the codec encodes."""

RECORD_TYPES: tuple[type, ...] = (
    WebhookReceived,
    MediaDownloadRequested,
    MediaDetected,
    MediaDownloadFailed,
    MediaStored,
    MediaDeadLettered,
    MediaRedriven,
    MediaDismissed,
)
"""Top-level record classes, each with a ``schemas/io.mediaflow.<Name>.avsc``."""
