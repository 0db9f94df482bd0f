"""How the read API shows the projection, and reads its queries.

A row as JSON (times in ISO 8601, bookkeeping columns left out), the opaque
keyset cursor of a page, and the ``GET /media`` query parameters checked and
bounded: any value a client sends either becomes a :class:`MediaQuery` or an
:class:`Invalid` the API answers 422, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mediaflow.events import MediaType
from mediaflow.media_state import COLUMNS, MediaRow, MediaStatus, millis
from mediaflow.storage.projection import MediaQuery

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_CURSOR = 256
"""Characters of a cursor; the API's own are about 60 (a time and a 32-character id)."""
_LIMIT = re.compile(r"[0-9]{1,6}")
"""ASCII digits only: ``int()`` also reads other scripts' digits, and ``isdigit()`` passes "²"."""
_INT64 = range(-(2**63), 2**63)
"""What the store's integer columns hold."""
_LIST_PARAMS = {
    "client_id",
    "instance_id",
    "message_id",
    "status",
    "media_type",
    "since",
    "until",
    "limit",
    "cursor",
}
# Bookkeeping columns of the row that mean nothing to an API user.
_HIDDEN = {"status_event_id", "last_error_event_id"}
_TIMES = {
    "status_at",
    "created_at",
    "updated_at",
    "last_error_at",
    "next_retry_at",
    "detected_at",
    "last_failed_at",
    "stored_at",
    "dead_lettered_at",
    "redriven_at",
    "dismissed_at",
}


class Invalid(Exception):
    """A query parameter the API cannot use (becomes a 422)."""


def iso(ms: int | None) -> str | None:
    """Render epoch milliseconds as ISO 8601 UTC (``2026-11-28T12:00:00.000Z``)."""
    if ms is None:
        return None
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def row_json(row: MediaRow) -> dict[str, Any]:
    """The API's view of a row: times in ISO 8601, bookkeeping columns left out."""
    data: dict[str, Any] = {}
    for name in COLUMNS:
        if name in _HIDDEN:
            continue
        value = getattr(row, name)
        data[name] = iso(value) if name in _TIMES else value
    return data


def encode_cursor(after: tuple[int, str]) -> str:
    """Opaque keyset cursor of a page's last row."""
    return base64.urlsafe_b64encode(json.dumps(list(after)).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[int, str]:
    """Inverse of :func:`encode_cursor`.

    Raises:
        Invalid: the cursor was not made by this API.
    """
    refused = Invalid("cursor is not one this API returned")
    if len(text) > MAX_CURSOR:  # also bounds the JSON's nesting, and so its recursion
        raise refused
    try:
        raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise refused from exc
    if (
        not isinstance(raw, list)
        or len(raw) != 2
        or not isinstance(raw[0], int)
        or isinstance(raw[0], bool)
        or raw[0] not in _INT64
        or not isinstance(raw[1], str)
        or not _storable(raw[1])
    ):
        raise refused
    return raw[0], raw[1]


def _storable(text: str) -> bool:
    """Whether both stores take ``text``: UTF-8 encodable (no lone surrogate), no NUL."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def parse_time(name: str, text: str) -> int:
    """Parse an ISO 8601 moment (no zone means UTC) into epoch milliseconds.

    Raises:
        Invalid: not an ISO 8601 date or date-time.
    """
    try:
        return millis(datetime.fromisoformat(text))
    except (ValueError, OverflowError, OSError) as exc:
        raise Invalid(f"{name} must be an ISO 8601 date-time, e.g. 2026-11-28T12:00:00Z") from exc


def parse_query(params: Mapping[str, str], keys: list[str]) -> MediaQuery:
    """Turn ``GET /media`` query parameters into a :class:`MediaQuery`.

    Args:
        params: the query string as a mapping (first value of each name).
        keys: every name given, with repetitions, to reject unknown or repeated ones.

    Raises:
        Invalid: an unknown, repeated or malformed parameter.
    """
    if any("\x00" in value for value in params.values()):
        raise Invalid("parameters must not contain NUL characters")
    unknown = sorted(set(keys) - _LIST_PARAMS)
    if unknown:
        raise Invalid(
            f"unknown parameter(s): {', '.join(unknown)}; use {', '.join(sorted(_LIST_PARAMS))}"
        )
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise Invalid(f"parameter(s) given more than once: {', '.join(repeated)}")
    if "message_id" in params and "instance_id" not in params:
        # A message id is unique only within its instance (and the index starts there).
        raise Invalid("message_id needs instance_id: a message id is unique only per instance")
    status = params.get("status")
    if status is not None and status not in MediaStatus.__members__.values():
        raise Invalid(f"status must be one of {', '.join(s.value for s in MediaStatus)}")
    media_type = params.get("media_type")
    if media_type is not None and media_type not in MediaType.__members__.values():
        raise Invalid(f"media_type must be one of {', '.join(t.value for t in MediaType)}")
    limit_text = params.get("limit", str(DEFAULT_LIMIT))
    if not _LIMIT.fullmatch(limit_text) or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise Invalid(f"limit must be an integer from 1 to {MAX_LIMIT}")
    since = parse_time("since", params["since"]) if "since" in params else None
    until = parse_time("until", params["until"]) if "until" in params else None
    if since is not None and until is not None and since > until:
        raise Invalid("since must not be later than until")
    return MediaQuery(
        client_id=params.get("client_id"),
        instance_id=params.get("instance_id"),
        message_id=params.get("message_id"),
        status=status,
        media_type=media_type,
        since_ms=since,
        until_ms=until,
        limit=int(limit_text),
        after=decode_cursor(params["cursor"]) if "cursor" in params else None,
    )


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_CURSOR",
    "MAX_LIMIT",
    "Invalid",
    "decode_cursor",
    "encode_cursor",
    "iso",
    "parse_query",
    "parse_time",
    "row_json",
]
