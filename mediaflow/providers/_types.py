"""Result types every provider adapter returns, and the drafts it builds them from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from mediaflow.errors import InvalidPayload
from mediaflow.events import MediaInfo, MediaSource, MediaType, Provider


class Category(StrEnum):
    """What kind of webhook was parsed; only ``MEDIA`` carries media or problems."""

    MEDIA = "media"
    TEXT = "text"
    STATUS = "status"
    OTHER = "other"


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvelopeFields:
    """The cheap routing fields the webhook receiver records for every request."""

    instance_id: str
    event_type: str
    message_id: str | None = None
    chat_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FoundMedia:
    """One downloadable media; ``content_path`` locates it in the message content."""

    media_id: str
    info: MediaInfo
    source: MediaSource
    content_path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InvalidMedia:
    """A media that no download can ever fetch; the detector dead-letters it.

    ``media_id`` is set when the message id allows deriving one.
    """

    content_path: str
    error: InvalidPayload
    media_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParseResult:
    """Everything the detector needs from one webhook."""

    category: Category
    media: tuple[FoundMedia, ...] = ()
    problems: tuple[InvalidMedia, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageContext:
    """Message-level facts shared by every media of one webhook (adapter-internal)."""

    provider: Provider
    client_id: str
    instance_id: str
    message_id: str | None
    chat_id: str
    sender_id: str | None = None
    sender_name: str | None = None
    from_me: bool = False
    is_group: bool = False
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaDraft:
    """The per-media fields an adapter read from one media object (adapter-internal)."""

    media_type: MediaType
    source: MediaSource
    variant: str | None = None
    mimetype: str | None = None
    file_name: str | None = None
    declared_length: int | None = None
    file_sha256: str | None = None
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class ContentItem:
    """One interesting key of a message's content: its dotted path, key and raw value."""

    path: str
    key: str
    value: Any
