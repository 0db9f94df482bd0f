"""What every projection store offers, whatever the database behind it.

A store holds one row per media (:class:`mediaflow.media_state.MediaRow`)
and, in the same database, the next offset to apply per partition of the
media event log. :meth:`ProjectionStore.apply_batch` changes both in one
transaction: that is the whole exactly-once argument of the projection.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mediaflow.errors import MediaflowError
from mediaflow.events import MediaEvent
from mediaflow.media_state import MediaRow, State


class StoreReplaced(MediaflowError):
    """The store was rebuilt and swapped in under a running consumer: re-read its offsets."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One record of the media event log; ``event`` is ``None`` when it could not be decoded."""

    topic: str
    partition: int
    offset: int
    event: MediaEvent | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaQuery:
    """Filters and keyset position of a media listing (newest first).

    ``after`` is the ``(created_at, media_id)`` of the last row of the previous page.
    """

    client_id: str | None = None
    instance_id: str | None = None
    message_id: str | None = None
    status: str | None = None
    media_type: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int = 50
    after: tuple[int, str] | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; ``next_after`` is ``None`` on the last page."""

    rows: list[MediaRow]
    next_after: tuple[int, str] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Stats:
    """Counts over the whole store."""

    total: int
    by_status: dict[str, int] = field(default_factory=dict)
    by_media_type: dict[str, int] = field(default_factory=dict)
    by_client: dict[str, int] = field(default_factory=dict)
    oldest_in_flight_at: int | None = None
    dead_letters: int = 0


@dataclass(frozen=True, slots=True)
class DailyCount:
    """Media first seen on ``day`` for one client and instance, now in ``status``."""

    client_id: str | None
    instance_id: str | None
    day: str
    status: str
    count: int


@dataclass(frozen=True, slots=True)
class Activity:
    """What happened to media in one time bucket (``bucket_start``: epoch ms, UTC).

    ``failed`` counts media whose *latest* failed attempt falls in the bucket
    (the row keeps only the newest), so it is a lower bound of attempts.
    """

    bucket_start: int
    stored: int
    failed: int
    dead_lettered: int


class ProjectionStore(Protocol):
    """The projection's database (SQLite or PostgreSQL)."""

    def generation(self) -> str:
        """An id that changes when a rebuilt store is swapped in."""
        ...

    def apply_batch(self, records: Sequence[LogRecord], *, generation: str | None = None) -> int:
        """Apply records not applied yet and advance the stored offsets, in one transaction.

        Records below the stored offset of their partition are skipped, so a
        batch re-read after a crash, or by a second copy after a rebalance, is
        never applied twice. Returns how many records were applied.

        Raises:
            StoreReplaced: ``generation`` is given and no longer the store's.
        """
        ...

    def offsets(self, topic: str) -> dict[int, int]:
        """Next offset to apply per partition of ``topic`` (partitions never applied are absent)."""
        ...

    def save_offsets(self, topic: str, positions: Mapping[int, int]) -> None:
        """Raise the stored offsets to at least ``positions`` (never lowers them)."""
        ...

    def put_states(self, states: Iterable[State]) -> None:
        """Write media states as rows (inserted, or replacing the stored ones) in one transaction.

        For a rebuild, which folds events into states itself
        (:func:`mediaflow.media_state.fold`) and stores its offsets once at
        the end; a live consumer uses :meth:`apply_batch`.
        """
        ...

    def load_states(self, media_ids: Collection[str]) -> dict[str, State]:
        """The stored states of these media, by media id (media without a row are absent)."""
        ...

    def get(self, media_id: str) -> MediaRow | None:
        """The row of one media, or ``None``."""
        ...

    def list(self, query: MediaQuery) -> Page:
        """One page of rows matching ``query``, newest ``created_at`` first."""
        ...

    def rows(self) -> Iterator[MediaRow]:
        """Every row, ordered by ``media_id`` (comparisons, changelog)."""
        ...

    def stats(self, client_id: str | None = None) -> Stats:
        """Counts by status, media type and client; oldest in-flight media; dead letters.

        Args:
            client_id: count only this client's media (``None``: every client's).
        """
        ...

    def daily_counts(
        self, *, client_id: str | None = None, since_day: str | None = None
    ) -> list[DailyCount]:
        """Counts per client, instance, day (of ``created_at``, UTC) and status."""
        ...

    def activity(
        self, *, since_ms: int, bucket_ms: int, client_id: str | None = None
    ) -> list[Activity]:
        """Media stored, failed and dead-lettered per bucket since ``since_ms``, oldest first.

        Buckets without any of the three are absent. Reads the whole table (no
        index on these times): callers cache it.
        """
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class Rebuild(Protocol):
    """A fresh store being filled, to be swapped in atomically for the live one."""

    store: ProjectionStore
    url: str
    """Where other processes open the same fresh store (a parallel rebuild's workers)."""

    def swap(self) -> None:
        """Replace the live store's contents with this one's, atomically; closes ``store``."""
        ...

    def discard(self) -> None:
        """Throw the rebuilt store away."""
        ...


__all__ = [
    "Activity",
    "DailyCount",
    "LogRecord",
    "MediaQuery",
    "Page",
    "ProjectionStore",
    "Rebuild",
    "Stats",
    "StoreReplaced",
]
