"""The state of one media, and the pure machine that folds events into it.

``fold(state | None, event type, record) -> state`` is the projection's
state machine, over a media's columns in a dict and the event's plain Avro
record; ``apply(current row | None, event) -> new row`` is the same on rows
and event dataclasses. It sits in the core because the projection stores run
it inside their transactions (:mod:`mediaflow.storage.projection`), a rebuild
folds the whole log with it, and the API, the operator tools and the
simulator all read the rows it makes.

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
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum, StrEnum
from typing import Any

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


State = dict[str, Any]
"""A media's row as a mutable dict of its columns: what :func:`fold` updates in place."""


def apply(row: MediaRow | None, event: MediaEvent) -> MediaRow:
    """Return the row after ``event``; ``row`` is ``None`` for a media not seen yet.

    The same transition as :func:`fold`, on the event's :func:`plain_record`.

    Args:
        row: the current state, or ``None``.
        event: any media event.

    Raises:
        TypeError: ``event`` is not a media event (a programming error).
    """
    state = fold(None if row is None else dict(row.__dict__), type(event), plain_record(event))
    new = object.__new__(MediaRow)
    object.__setattr__(new, "__dict__", state)  # the fresh state is the new row's (frozen) dict
    return new


def fold(state: State | None, event_type: type, record: Mapping[str, Any]) -> State:
    """Apply one event, as its plain Avro record, to a media's state; the one state machine.

    ``record`` is what :meth:`mediaflow.codec.AvroCodec.decode_plain` reads
    (timestamps as epoch milliseconds, nested records as dicts), or
    :func:`plain_record` of an event dataclass: the live projection and a
    rebuild (which skips the dataclasses, for speed) both fold through here.

    Args:
        state: the media's state, updated in place; ``None`` for a media not seen yet.
        event_type: the event's dataclass (which transition applies).
        record: the event's fields.

    Returns:
        The state after the event (``state`` itself, or a new one).

    Raises:
        TypeError: ``event_type`` is not a media event (a programming error).
    """
    transition = _TRANSITIONS.get(event_type)
    if transition is None:
        raise TypeError(f"not a media event: {event_type.__name__}")
    at = record["occurred_at"]
    if state is None:
        state = _NEW_STATE.copy()
        state["media_id"] = record["media_id"]
        state["created_at"] = state["updated_at"] = at
        state["day"] = day_of(at)
    else:
        if at > state["updated_at"]:
            state["updated_at"] = at
        if at < state["created_at"]:
            state["created_at"] = at
            state["day"] = day_of(at)
    transition(state, record, at)
    return state


def plain_record(record: Any) -> dict[str, Any]:
    """The fields of a record dataclass as :meth:`AvroCodec.decode_plain` reads them back.

    Nested records become dicts, enums their values, datetimes epoch milliseconds.
    """
    fields = {}
    for name, convert in _plain_plan(type(record)):
        value = getattr(record, name)
        fields[name] = value if convert is None or value is None else convert(value)
    return fields


@functools.cache
def _plain_plan(record_type: type) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
    # Per type, once: looking at each value's type on every event tripled apply()'s cost.
    hints = typing.get_type_hints(record_type)
    return tuple((f.name, _plain_converter(hints[f.name])) for f in dataclasses.fields(record_type))


def _plain_converter(hint: Any) -> Callable[[Any], Any] | None:
    if isinstance(hint, types.UnionType):
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        hint = inner[0] if len(inner) == 1 else None
    if hint is datetime:
        return millis
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _enum_value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return plain_record
    return None


def _enum_value(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def row_from(fields: Iterable[tuple[str, object]]) -> MediaRow:
    """Build a row from every one of its fields (a database row, a state), unchecked.

    Skips the frozen ``__init__``: its 35 ``object.__setattr__`` calls were the
    largest cost of applying an event in a rebuild. Filling the instance dict
    directly is why :class:`MediaRow` has no ``__slots__``.
    """
    row = object.__new__(MediaRow)
    row.__dict__.update(fields)
    return row


# Column order (the dict's), so a state's values are its row's values. The
# status is older than any event, so the first event of a media always takes it.
_NEW_STATE: State = {
    f.name: None if f.default is MISSING else f.default for f in dataclasses.fields(MediaRow)
} | {"status": MediaStatus.DETECTED.value, "status_at": -1, "status_event_id": ""}

_DETECTED = MediaStatus.DETECTED.value
_RETRYING = MediaStatus.RETRYING.value
_STORED = MediaStatus.STORED.value
_DEAD_LETTERED = MediaStatus.DEAD_LETTERED.value
_REDRIVEN = MediaStatus.REDRIVEN.value
_DISMISSED = MediaStatus.DISMISSED.value

_INFO_COLUMNS = (
    "provider",
    "client_id",
    "instance_id",
    "message_id",
    "chat_id",
    "sender_id",
    "sender_name",
    "media_type",
    "mimetype",
    "file_name",
)
"""The columns a ``MediaDetected`` fills from its ``info``, named as its fields."""


def _detected(state: State, record: Mapping[str, Any], at: int) -> None:
    first = state["detected_at"]
    state["detected_at"] = at if first is None else min(first, at)
    info = record["info"]
    for column in _INFO_COLUMNS:
        state[column] = info[column]
    _take_status(state, _DETECTED, at, record["event_id"], None)


def _download_failed(state: State, record: Mapping[str, Any], at: int) -> None:
    state["attempts"] = max(state["attempts"], record["attempt"])
    state["last_failed_at"] = _newest(state["last_failed_at"], at)
    _error(state, record, at)
    # A non-retryable failure carries no status: the MediaDeadLettered after it does.
    if record["retryable"]:
        _take_status(state, _RETRYING, at, record["event_id"], record["next_due_at"])


def _stored(state: State, record: Mapping[str, Any], at: int) -> None:
    state["attempts"] = max(state["attempts"], record["attempt"])
    # Several MediaStored for one media are normal: a redelivered request is
    # answered from the bucket ("existing"), a redrive may store again. They
    # name the same deterministic key; the first one wins, so stored_at says
    # when the media was first safe and does not grow with redeliveries.
    # Ties on time break on the key so arrival order never matters.
    stored_at = state["stored_at"]
    if stored_at is None or (at, record["key"]) < (stored_at, state["object_key"] or ""):
        state["stored_at"] = at
        state["bucket"] = record["bucket"]
        state["object_key"] = record["key"]
        state["size"] = record["size"]
        state["sha256"] = record["sha256"]
        state["content_type"] = record["content_type"]
    _take_status(state, _STORED, at, record["event_id"], None)


def _dead_lettered(state: State, record: Mapping[str, Any], at: int) -> None:
    state["attempts"] = max(state["attempts"], record["attempt"])
    state["dead_lettered_at"] = _newest(state["dead_lettered_at"], at)
    _error(state, record, at)
    _take_status(state, _DEAD_LETTERED, at, record["event_id"], None)


def _redriven(state: State, record: Mapping[str, Any], at: int) -> None:
    state["redriven_at"] = _newest(state["redriven_at"], at)
    _take_status(state, _REDRIVEN, at, record["event_id"], None)


def _dismissed(state: State, record: Mapping[str, Any], at: int) -> None:
    state["dismissed_at"] = _newest(state["dismissed_at"], at)
    _take_status(state, _DISMISSED, at, record["event_id"], None)


_TRANSITIONS: dict[type, Callable[[State, Mapping[str, Any], int], None]] = {
    MediaDetected: _detected,
    MediaDownloadFailed: _download_failed,
    MediaStored: _stored,
    MediaDeadLettered: _dead_lettered,
    MediaRedriven: _redriven,
    MediaDismissed: _dismissed,
}


def _take_status(
    state: State, status: str, at: int, event_id: str, next_retry_at: int | None
) -> None:
    newer = (at, event_id) > (state["status_at"], state["status_event_id"])
    if state["status"] == _STORED and state["status_at"] >= 0:
        # Terminal: of several MediaStored (a redrive that stored again), the newest wins.
        takes = status == _STORED and newer
    else:
        takes = status == _STORED or newer
    if takes:
        state["status"] = status
        state["status_at"] = at
        state["status_event_id"] = event_id
        state["next_retry_at"] = next_retry_at


def _newest(current: int | None, at: int) -> int:
    return at if current is None else max(current, at)


def _error(state: State, record: Mapping[str, Any], at: int) -> None:
    event_id = record["event_id"]
    last = state["last_error_at"]
    if last is not None and (at, event_id) <= (last, state["last_error_event_id"] or ""):
        return
    state["last_error_kind"] = record["error_kind"]
    state["last_error_message"] = record["error_message"]
    state["last_error_at"] = at
    state["last_error_event_id"] = event_id


__all__ = [
    "COLUMNS",
    "IN_FLIGHT",
    "MediaRow",
    "MediaStatus",
    "State",
    "apply",
    "day_of",
    "fold",
    "millis",
    "plain_record",
    "row_from",
]
