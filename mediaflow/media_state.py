"""The state of one media, and the pure machine that folds events into it.

``apply(current row | None, event) -> new row`` is the projection's state
machine. It sits in the core because the projection stores run it inside
their transactions (:mod:`mediaflow.storage.projection`), and the API, the
operator tools and the simulator all read the rows it makes.

The row of a media is a *join* of the events seen so far, so applying events
is idempotent and order-insensitive: the same set of events gives the same row
whatever order they arrive in and however often each one arrives. That is
what makes duplicates (the same ``event_id`` twice) no-ops and lets a
``MediaStored`` that overtakes its ``MediaDetected`` create the row, with the
``MediaDetected`` later only filling in what the media is.

Rules:

* **Status** comes from the newest status-bearing event, ordered by
  ``(occurred_at, event_id)``, except that ``stored`` is terminal: once a
  ``MediaStored`` is seen nothing changes the status again. A late
  ``MediaDownloadFailed`` never overwrites ``stored``, and neither does a later
  ``MediaDismissed`` or ``MediaRedriven``: the object is in the bucket, so there
  is nothing left to dismiss or redrive; such an event is still recorded in
  its own timestamp (``dismissed_at``, ``redriven_at``) for the audit trail.
* ``MediaDetected`` sets the status ``detected`` only when it is the newest
  status event (normally: when it is the first event of the media).
* A non-retryable ``MediaDownloadFailed`` records the error but carries no
  status: the ``MediaDeadLettered`` that follows it does.
* ``next_retry_at`` belongs to the status: it is set by the retryable failure
  that made the media ``retrying`` and cleared by any newer status.
* The last error is the newest failure (``MediaDownloadFailed`` or
  ``MediaDeadLettered``) by ``(occurred_at, event_id)``.
* Timestamps per transition keep the newest occurrence, except
  ``detected_at`` and ``created_at`` (the first); ``attempts`` is the highest
  attempt number seen.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from mediaflow.events import (
    MediaDeadLettered,
    MediaDetected,
    MediaDismissed,
    MediaDownloadFailed,
    MediaEvent,
    MediaRedriven,
    MediaStored,
)


class MediaStatus(StrEnum):
    """Where a media is in its life."""

    DETECTED = "detected"
    RETRYING = "retrying"
    STORED = "stored"
    DEAD_LETTERED = "dead_lettered"
    REDRIVEN = "redriven"
    DISMISSED = "dismissed"


IN_FLIGHT = (MediaStatus.DETECTED, MediaStatus.RETRYING, MediaStatus.REDRIVEN)
"""Statuses still waiting for the pipeline (the ``oldest in-flight`` age in stats)."""


@dataclass(frozen=True, kw_only=True)
class MediaRow:
    """The current state of one media. Times are epoch milliseconds, UTC."""

    media_id: str
    status: str
    status_at: int
    status_event_id: str
    created_at: int
    updated_at: int
    day: str
    attempts: int = 0
    last_error_kind: str | None = None
    last_error_message: str | None = None
    last_error_at: int | None = None
    last_error_event_id: str | None = None
    next_retry_at: int | None = None
    detected_at: int | None = None
    last_failed_at: int | None = None
    stored_at: int | None = None
    dead_lettered_at: int | None = None
    redriven_at: int | None = None
    dismissed_at: int | None = None
    bucket: str | None = None
    object_key: str | None = None
    size: int | None = None
    sha256: str | None = None
    content_type: str | None = None
    provider: str | None = None
    client_id: str | None = None
    instance_id: str | None = None
    message_id: str | None = None
    chat_id: str | None = None
    sender_id: str | None = None
    sender_name: str | None = None
    media_type: str | None = None
    mimetype: str | None = None
    file_name: str | None = None


COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(MediaRow))
"""Column names of the ``media`` table, in :class:`MediaRow` field order."""


def millis(moment: datetime) -> int:
    """Return epoch milliseconds of a datetime (naive values are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def day_of(ms: int) -> str:
    """Return the UTC day ``YYYY-MM-DD`` of epoch milliseconds."""
    return _day(ms // _MS_PER_DAY)


_MS_PER_DAY = 86_400_000


@functools.lru_cache(maxsize=4096)
def _day(days_since_epoch: int) -> str:
    # Cached: every new row needs its day, and a log spans few distinct days.
    return (date(1970, 1, 1) + timedelta(days=days_since_epoch)).isoformat()


def apply(row: MediaRow | None, event: MediaEvent) -> MediaRow:
    """Return the row after ``event``; ``row`` is ``None`` for a media not seen yet.

    Args:
        row: the current state, or ``None``.
        event: any media event.

    Raises:
        TypeError: ``event`` is not a media event (a programming error).
    """
    at = millis(event.occurred_at)
    if row is None:
        row = _new_row(event.media_id, at)
    changes = _event_changes(row, event, at)
    changes["updated_at"] = max(row.updated_at, at)
    if at < row.created_at:
        changes["created_at"] = at
        changes["day"] = day_of(at)
    status = _status_of(event)
    if status is not None and _takes_status(row, status, at, event.event_id):
        changes["status"] = status.value
        changes["status_at"] = at
        changes["status_event_id"] = event.event_id
        retry = isinstance(event, MediaDownloadFailed) and status is MediaStatus.RETRYING
        changes["next_retry_at"] = (
            millis(event.next_due_at) if retry and event.next_due_at else None  # type: ignore[union-attr]
        )
    return _replace(row, changes)


def row_from(fields: Iterable[tuple[str, object]]) -> MediaRow:
    """Build a row from every one of its fields (a database row, a copy), unchecked.

    Skips the frozen ``__init__``: its 35 ``object.__setattr__`` calls were the
    largest cost of applying an event in a rebuild. Filling the instance dict
    directly is why :class:`MediaRow` has no ``__slots__``.
    """
    row = object.__new__(MediaRow)
    row.__dict__.update(fields)
    return row


def _replace(row: MediaRow, changes: dict[str, object]) -> MediaRow:
    # dataclasses.replace, minus its per-call field introspection and frozen __init__:
    # one merged dict, set as the new instance's dict (frozen forbids plain assignment).
    new = object.__new__(MediaRow)
    object.__setattr__(new, "__dict__", {**row.__dict__, **changes})
    return new


def _new_row(media_id: str, at: int) -> MediaRow:
    return _replace(
        _PLACEHOLDER, {"media_id": media_id, "created_at": at, "updated_at": at, "day": day_of(at)}
    )


# A status older than any event, so the first event of a media always takes it.
_PLACEHOLDER = MediaRow(
    media_id="",
    status=MediaStatus.DETECTED.value,
    status_at=-1,
    status_event_id="",
    created_at=0,
    updated_at=0,
    day="",
)


def _status_of(event: MediaEvent) -> MediaStatus | None:
    match event:
        case MediaDetected():
            return MediaStatus.DETECTED
        case MediaDownloadFailed(retryable=True):
            return MediaStatus.RETRYING
        case MediaDownloadFailed():
            return None
        case MediaStored():
            return MediaStatus.STORED
        case MediaDeadLettered():
            return MediaStatus.DEAD_LETTERED
        case MediaRedriven():
            return MediaStatus.REDRIVEN
        case MediaDismissed():
            return MediaStatus.DISMISSED
    raise TypeError(f"not a media event: {type(event).__name__}")


def _takes_status(row: MediaRow, status: MediaStatus, at: int, event_id: str) -> bool:
    if row.status == MediaStatus.STORED and row.status_at >= 0:
        # Terminal: of several MediaStored (a redrive that stored again), the newest wins.
        return status is MediaStatus.STORED and (at, event_id) > (
            row.status_at,
            row.status_event_id,
        )
    if status is MediaStatus.STORED:
        return True
    return (at, event_id) > (row.status_at, row.status_event_id)


def _event_changes(row: MediaRow, event: MediaEvent, at: int) -> dict[str, object]:
    match event:
        case MediaDetected(info=info):
            return {
                "detected_at": at if row.detected_at is None else min(row.detected_at, at),
                "provider": info.provider,
                "client_id": info.client_id,
                "instance_id": info.instance_id,
                "message_id": info.message_id,
                "chat_id": info.chat_id,
                "sender_id": info.sender_id,
                "sender_name": info.sender_name,
                "media_type": str(info.media_type),
                "mimetype": info.mimetype,
                "file_name": info.file_name,
            }
        case MediaDownloadFailed():
            return {
                "attempts": max(row.attempts, event.attempt),
                "last_failed_at": _newest(row.last_failed_at, at),
                **_error(row, event.error_kind, event.error_message, at, event.event_id),
            }
        case MediaStored():
            # Several MediaStored for one media are normal: a redelivered request is
            # answered from the bucket ("existing"), a redrive may store again. They
            # name the same deterministic key; the first one wins, so stored_at says
            # when the media was first safe and does not grow with redeliveries.
            # Ties on time break on the key so arrival order never matters.
            first = row.stored_at is None or (at, event.key) < (
                row.stored_at,
                row.object_key or "",
            )
            stored: dict[str, object] = {"attempts": max(row.attempts, event.attempt)}
            if first:
                stored["stored_at"] = at
                stored.update(
                    bucket=event.bucket,
                    object_key=event.key,
                    size=event.size,
                    sha256=event.sha256,
                    content_type=event.content_type,
                )
            return stored
        case MediaDeadLettered():
            return {
                "attempts": max(row.attempts, event.attempt),
                "dead_lettered_at": _newest(row.dead_lettered_at, at),
                **_error(row, event.error_kind, event.error_message, at, event.event_id),
            }
        case MediaRedriven():
            return {"redriven_at": _newest(row.redriven_at, at)}
        case MediaDismissed():
            return {"dismissed_at": _newest(row.dismissed_at, at)}
    raise TypeError(f"not a media event: {type(event).__name__}")


def _newest(current: int | None, at: int) -> int:
    return at if current is None else max(current, at)


def _error(row: MediaRow, kind: str, message: str, at: int, event_id: str) -> dict[str, object]:
    if row.last_error_at is not None and (at, event_id) <= (
        row.last_error_at,
        row.last_error_event_id or "",
    ):
        return {}
    return {
        "last_error_kind": kind,
        "last_error_message": message,
        "last_error_at": at,
        "last_error_event_id": event_id,
    }


__all__ = [
    "COLUMNS",
    "IN_FLIGHT",
    "MediaRow",
    "MediaStatus",
    "apply",
    "day_of",
    "millis",
    "row_from",
]
