"""What became of each dead letter: still open, redriven, stored since, or dismissed.

Kafka records are immutable, so a dead letter stays on its topic after an
operator acted on it. Its state is read from the projection's row of its
media, compared with when the letter was written: a ``MediaRedriven`` or
``MediaDismissed`` *after* the letter closes it, and a stored media closes
every letter it ever had. A letter that names no media (an undecodable
webhook) or whose media the projection does not know stays ``open``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from mediaflow.config import Settings
from mediaflow.media_state import MediaRow, MediaStatus, millis
from mediaflow.ops.dlq import DeadLetterView
from mediaflow.storage.projection import open_store


class LetterState(StrEnum):
    """The state of one dead letter, as ``dlq list`` and the dashboard show it."""

    OPEN = "open"
    REDRIVEN = "redriven"
    STORED = "stored"
    DISMISSED = "dismissed"


def letter_state(view: DeadLetterView, row: MediaRow | None) -> LetterState:
    """The state of ``view`` given its media's projection row (pure).

    The newest operator action after the letter wins; ``stored`` wins over all.
    """
    if row is None:
        return LetterState.OPEN
    if row.status == MediaStatus.STORED:
        return LetterState.STORED
    written = millis(view.when) if view.when else 0
    actions = [
        (at, state)
        for at, state in (
            (row.redriven_at, LetterState.REDRIVEN),
            (row.dismissed_at, LetterState.DISMISSED),
        )
        if at is not None and at >= written
    ]
    return max(actions, key=lambda a: a[0])[1] if actions else LetterState.OPEN


def media_rows(settings: Settings, media_ids: Iterable[str]) -> dict[str, MediaRow]:
    """The projection rows of ``media_ids`` that exist."""
    ids = {m for m in media_ids if m}
    if not ids:
        return {}
    store = open_store(settings.projection_db_url)
    try:
        rows = [store.get(media_id) for media_id in sorted(ids)]
    finally:
        store.close()
    return {r.media_id: r for r in rows if r is not None}


def letter_states(settings: Settings, views: Iterable[DeadLetterView]) -> dict[str, LetterState]:
    """The state of each dead letter by its id (``partition:offset``)."""
    views = list(views)
    rows: Mapping[str, MediaRow] = media_rows(settings, (v.media_id or "" for v in views))
    return {v.id: letter_state(v, rows.get(v.media_id or "")) for v in views}


__all__ = ["LetterState", "letter_state", "letter_states", "media_rows"]
