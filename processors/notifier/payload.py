"""The JSON a platform receives for a terminal media event: pure, no I/O.

Shape (Standard Webhooks' recommended envelope)::

    {"type": "media.stored",            # or "media.dead_lettered"
     "timestamp": "2026-11-28T12:00:50.000Z",   # when the event happened
     "data": {"media_id", "client_id", "instance_id", "message_id", "chat_id",
              "media_type", "state", "bucket", "key", "size", "sha256",
              "mimetype", "content_type", "file_name",
              "download_url", "download_url_expires_at",     # stored only
              "error_kind", "error_message"}}                # dead-lettered only

``data`` holds what the platform needs to update its messages table without
another call. The ``webhook-id`` of a notification is the event's id: every
delivery of the same event (a retry, a redelivery after a crash) carries the
same one, so the receiver deduplicates on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mediaflow.events import MediaDeadLettered, MediaInfo, MediaStored

Link = Callable[[MediaStored, MediaInfo], tuple[str, datetime]]
"""A presigned link to a stored object, and when it expires."""

TYPES: dict[type, str] = {MediaStored: "media.stored", MediaDeadLettered: "media.dead_lettered"}
"""The events that end a media's life, and the notification type of each."""


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification, ready to sign and send."""

    webhook_id: str
    type: str
    client_id: str
    instance_id: str
    media_id: str
    body: bytes


def notification(event: object, link: Link) -> Notification | None:
    """The notification of ``event``, or ``None`` when there is nothing to tell.

    Only terminal events that describe their media (``info``) are told: the
    others are steps on the way, and an event written before events carried
    ``info`` cannot say whose media it is.

    Args:
        event: any decoded media event.
        link: presigns the object of a stored media.
    """
    kind = TYPES.get(type(event))
    info: MediaInfo | None = getattr(event, "info", None)
    if kind is None or info is None:
        return None
    assert isinstance(event, MediaStored | MediaDeadLettered)
    data: dict[str, Any] = {
        "media_id": event.media_id,
        "client_id": info.client_id,
        "instance_id": info.instance_id,
        "message_id": info.message_id,
        "chat_id": info.chat_id,
        "media_type": info.media_type.value,
        "mimetype": info.mimetype,
        "file_name": info.file_name,
    }
    if isinstance(event, MediaStored):
        url, expires_at = link(event, info)
        data |= {
            "state": "stored",
            "bucket": event.bucket,
            "key": event.key,
            "size": event.size,
            "sha256": event.sha256,
            "content_type": event.content_type,
            "download_url": url,
            "download_url_expires_at": _iso(expires_at),
        }
    else:
        data |= {
            "state": "dead_lettered",
            "error_kind": event.error_kind,
            "error_message": event.error_message,
        }
    body = {"type": kind, "timestamp": _iso(event.occurred_at), "data": data}
    return Notification(
        webhook_id=event.event_id,
        type=kind,
        client_id=info.client_id,
        instance_id=info.instance_id,
        media_id=event.media_id,
        # ASCII: a lone surrogate in a provider's file name stays valid JSON text.
        body=json.dumps(body, separators=(",", ":")).encode(),
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


__all__ = ["TYPES", "Link", "Notification", "notification"]
