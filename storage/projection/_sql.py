"""The SQL both backends share; each backend supplies connections and transactions.

SQLite and PostgreSQL accept the same statements here (``ON CONFLICT ... DO
UPDATE``, row-value comparisons for keyset pagination); only the parameter
marker differs (``?`` / ``%s``) and PostgreSQL locks the offset rows with
``FOR UPDATE`` so that several projection copies serialise per partition.
"""

from __future__ import annotations

import abc
import itertools
import operator
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from mediaflow.media_state import (
    COLUMNS,
    IN_FLIGHT,
    MediaRow,
    MediaStatus,
    State,
    apply,
    row_from,
)
from mediaflow.storage.projection.base import (
    Activity,
    DailyCount,
    LogRecord,
    MediaQuery,
    Page,
    Stats,
    StoreReplaced,
)

MIGRATIONS = Path(__file__).parent / "migrations"

_UPSERT_SET = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "media_id")
_SELECT = ", ".join(COLUMNS)
_VALUES = operator.attrgetter(*COLUMNS)
"""A row's column values as one tuple, in :data:`COLUMNS` order."""
_NULLS = (None,) * len(COLUMNS)
_STATE_VALUES = operator.itemgetter(*COLUMNS)
"""A state's column values as one tuple, in :data:`COLUMNS` order."""


def _storable(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row's values with every NUL character replaced by U+FFFD.

    Provider text (file names, sender names, error messages) may hold NUL;
    PostgreSQL text cannot, and refusing the row would stop the projection at
    that event for good. SQLite could keep it: replaced there too, so both
    backends give the same answers.
    """
    for value in values:
        if type(value) is str and "\x00" in value:
            return tuple(v.replace("\x00", "\ufffd") if type(v) is str else v for v in values)
    return values


class SqlStore(abc.ABC):
    """A :class:`mediaflow.storage.projection.base.ProjectionStore` over a DB-API connection."""

    ph = "?"
    lock_clause = ""

    @abc.abstractmethod
    def _transaction(self) -> AbstractContextManager[Any]:
        """Return a context manager giving a cursor inside one write transaction."""

    @abc.abstractmethod
    def _cursor(self) -> AbstractContextManager[Any]:
        """Return a context manager giving a cursor for reads."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""

    # -- writes -------------------------------------------------------------------------

    def generation(self) -> str:
        """An id that changes when a rebuilt store is swapped in."""
        with self._cursor() as cur:
            cur.execute("SELECT value FROM meta WHERE name = 'generation'")
            return str(cur.fetchone()[0])

    def apply_batch(self, records: Sequence[LogRecord], *, generation: str | None = None) -> int:
        """Apply records not applied yet and advance the stored offsets, in one transaction.

        Raises:
            StoreReplaced: ``generation`` is given and no longer the store's.
        """
        if not records:
            return 0
        with self._transaction() as cur:
            if generation is not None:
                cur.execute("SELECT value FROM meta WHERE name = 'generation'")
                if cur.fetchone()[0] != generation:
                    raise StoreReplaced("the projection store was rebuilt; re-reading its offsets")
            stored = self._lock_offsets(cur, records)
            fresh = [r for r in records if r.offset >= stored.get((r.topic, r.partition), 0)]
            rows = self._load(cur, {r.event.media_id for r in fresh if r.event is not None})
            changed: dict[str, MediaRow] = {}
            for record in fresh:
                if record.event is None:
                    continue
                media_id = record.event.media_id
                new = apply(rows.get(media_id), record.event)
                if new != rows.get(media_id):
                    rows[media_id] = changed[media_id] = new
            if changed:
                self._upsert(cur, changed.values())
            positions: dict[tuple[str, int], int] = {}
            for record in fresh:
                key = (record.topic, record.partition)
                positions[key] = max(positions.get(key, 0), record.offset + 1)
            self._write_offsets(cur, positions)
        return len(fresh)

    def put_states(self, states: Iterable[State]) -> None:
        """Write media states as rows (inserted, or replacing stored ones) in one transaction."""
        with self._transaction() as cur:
            self._write_rows(cur, [_storable(_STATE_VALUES(state)) for state in states])

    def load_states(self, media_ids: Collection[str]) -> dict[str, State]:
        """The stored states of these media, by media id (media without a row are absent)."""
        with self._cursor() as cur:
            rows = self._load(cur, set(media_ids))
        return {
            media_id: dict(zip(COLUMNS, _VALUES(row), strict=True))
            for media_id, row in rows.items()
        }

    def _upsert(self, cur: Any, rows: Iterable[MediaRow]) -> None:
        self._write_rows(cur, [_storable(_VALUES(row)) for row in rows])

    def _write_rows(self, cur: Any, rows: Iterable[tuple[Any, ...]]) -> None:
        # Python's sqlite3 binds None about eight times slower than a number
        # (it looks for an adapter first), and most columns of most rows are
        # NULL: each row's INSERT names only its other columns, the NULL ones
        # take their default (NULL), also for the conflict's update.
        groups: dict[tuple[bool, ...], list[tuple[Any, ...]]] = {}
        for values in rows:
            filled = tuple(map(operator.is_not, values, _NULLS))
            group = groups.get(filled)
            if group is None:
                group = groups[filled] = []
            group.append(tuple(itertools.compress(values, filled)))
        for filled, group in groups.items():
            columns = ", ".join(itertools.compress(COLUMNS, filled))
            cur.executemany(
                f"INSERT INTO media ({columns}) VALUES ({self._marks(len(group[0]))}) "
                f"ON CONFLICT (media_id) DO UPDATE SET {_UPSERT_SET}",
                group,
            )

    def save_offsets(self, topic: str, positions: Mapping[int, int]) -> None:
        """Raise the stored offsets to at least ``positions`` (never lowers them)."""
        with self._transaction() as cur:
            self._write_offsets(cur, {(topic, p): o for p, o in positions.items()})

    def _lock_offsets(self, cur: Any, records: Sequence[LogRecord]) -> dict[tuple[str, int], int]:
        keys = sorted({(r.topic, r.partition) for r in records})
        # Create missing rows first so that FOR UPDATE has something to lock even
        # for a partition never applied before (two copies racing on it serialise here).
        cur.executemany(
            f"INSERT INTO offsets (topic, partition_id, next_offset) VALUES ({self._marks(3)}) "
            "ON CONFLICT (topic, partition_id) DO NOTHING",
            [(t, p, 0) for t, p in keys],
        )
        stored: dict[tuple[str, int], int] = {}
        for topic in {t for t, _ in keys}:
            parts = [p for t, p in keys if t == topic]
            cur.execute(
                f"SELECT partition_id, next_offset FROM offsets WHERE topic = {self.ph} "
                f"AND partition_id IN ({self._marks(len(parts))}) ORDER BY partition_id"
                f"{self.lock_clause}",
                (topic, *parts),
            )
            stored.update({(topic, int(p)): int(o) for p, o in cur.fetchall()})
        return stored

    def _write_offsets(self, cur: Any, positions: Mapping[tuple[str, int], int]) -> None:
        if not positions:
            return
        ph = self.ph
        cur.executemany(
            f"INSERT INTO offsets (topic, partition_id, next_offset) VALUES ({ph}, {ph}, {ph}) "
            "ON CONFLICT (topic, partition_id) DO UPDATE SET next_offset = "
            "CASE WHEN excluded.next_offset > offsets.next_offset "
            "THEN excluded.next_offset ELSE offsets.next_offset END",
            [(t, p, o) for (t, p), o in sorted(positions.items())],
        )

    def _load(self, cur: Any, media_ids: set[str]) -> dict[str, MediaRow]:
        rows: dict[str, MediaRow] = {}
        ids = sorted(media_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            cur.execute(
                f"SELECT {_SELECT} FROM media WHERE media_id IN ({self._marks(len(chunk))})", chunk
            )
            for values in cur.fetchall():
                row = _row(values)
                rows[row.media_id] = row
        return rows

    # -- reads --------------------------------------------------------------------------

    def offsets(self, topic: str) -> dict[int, int]:
        """Next offset to apply per partition of ``topic``."""
        with self._cursor() as cur:
            cur.execute(
                f"SELECT partition_id, next_offset FROM offsets WHERE topic = {self.ph}", (topic,)
            )
            return {int(p): int(o) for p, o in cur.fetchall()}

    def get(self, media_id: str) -> MediaRow | None:
        """The row of one media, or ``None``."""
        with self._cursor() as cur:
            cur.execute(f"SELECT {_SELECT} FROM media WHERE media_id = {self.ph}", (media_id,))
            values = cur.fetchone()
        return None if values is None else _row(values)

    def list(self, query: MediaQuery) -> Page:
        """One page of rows matching ``query``, newest ``created_at`` first."""
        where, params = self._filters(query)
        sql = f"SELECT {_SELECT} FROM media"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY created_at DESC, media_id DESC LIMIT {int(query.limit) + 1}"
        with self._cursor() as cur:
            cur.execute(sql, params)
            rows = [_row(v) for v in cur.fetchall()]
        if len(rows) <= query.limit:
            return Page(rows, None)
        rows = rows[: query.limit]
        return Page(rows, (rows[-1].created_at, rows[-1].media_id))

    def _filters(self, query: MediaQuery) -> tuple[list[str], list[Any]]:
        ph = self.ph
        where: list[str] = []
        params: list[Any] = []
        for column in ("client_id", "instance_id", "message_id", "status", "media_type"):
            value = getattr(query, column)
            if value is not None:
                where.append(f"{column} = {ph}")
                params.append(value)
        if query.since_ms is not None:
            where.append(f"created_at >= {ph}")
            params.append(query.since_ms)
        if query.until_ms is not None:
            where.append(f"created_at < {ph}")
            params.append(query.until_ms)
        if query.after is not None:
            where.append(f"(created_at, media_id) < ({ph}, {ph})")
            params.extend(query.after)
        return where, params

    def rows(self) -> Iterator[MediaRow]:
        """Every row, ordered by ``media_id``."""
        with self._cursor() as cur:
            cur.execute(f"SELECT {_SELECT} FROM media ORDER BY media_id")
            rows = [_row(v) for v in cur.fetchall()]
        yield from rows

    def stats(self, client_id: str | None = None) -> Stats:
        """Counts by status, media type and client; oldest in-flight media; dead letters.

        Args:
            client_id: count only this client's media (``None``: every client's).
        """
        in_flight = [s.value for s in IN_FLIGHT]
        scope, params = (
            ("", []) if client_id is None else (f" AND client_id = {self.ph}", [client_id])
        )
        with self._cursor() as cur:
            groups = {}
            for column in ("status", "media_type", "client_id"):
                cur.execute(
                    f"SELECT {column}, COUNT(*) FROM media WHERE TRUE{scope} GROUP BY {column}",
                    params,
                )
                groups[column] = {str(k) if k is not None else "unknown": int(n) for k, n in cur}
            cur.execute(
                "SELECT MIN(created_at) FROM media "
                f"WHERE status IN ({self._marks(len(in_flight))}){scope}",
                [*in_flight, *params],
            )
            oldest = cur.fetchone()[0]
        return Stats(
            total=sum(groups["status"].values()),
            by_status=groups["status"],
            by_media_type=groups["media_type"],
            by_client=groups["client_id"],
            oldest_in_flight_at=None if oldest is None else int(oldest),
            dead_letters=groups["status"].get(MediaStatus.DEAD_LETTERED.value, 0),
        )

    def daily_counts(
        self, *, client_id: str | None = None, since_day: str | None = None
    ) -> list[DailyCount]:
        """Counts per client, instance, day and status, computed by one indexed GROUP BY."""
        where: list[str] = []
        params: list[Any] = []
        if client_id is not None:
            where.append(f"client_id = {self.ph}")
            params.append(client_id)
        if since_day is not None:
            where.append(f"day >= {self.ph}")
            params.append(since_day)
        sql = "SELECT client_id, instance_id, day, status, COUNT(*) FROM media"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += (
            " GROUP BY client_id, instance_id, day, status"
            " ORDER BY day, client_id, instance_id, status"
        )
        with self._cursor() as cur:
            cur.execute(sql, params)
            return [DailyCount(c, i, d, s, int(n)) for c, i, d, s, n in cur.fetchall()]

    def activity(
        self, *, since_ms: int, bucket_ms: int, client_id: str | None = None
    ) -> list[Activity]:
        """Media stored, failed and dead-lettered per bucket since ``since_ms``, oldest first."""
        ph = self.ph
        counts: dict[int, list[int]] = {}
        with self._cursor() as cur:
            for slot, column in enumerate(("stored_at", "last_failed_at", "dead_lettered_at")):
                sql = f"SELECT ({column} - {ph}) / {ph}, COUNT(*) FROM media WHERE {column} >= {ph}"
                params: list[Any] = [since_ms, bucket_ms, since_ms]
                if client_id is not None:
                    sql += f" AND client_id = {ph}"
                    params.append(client_id)
                cur.execute(f"{sql} GROUP BY 1", params)
                for index, count in cur.fetchall():
                    counts.setdefault(int(index), [0, 0, 0])[slot] = int(count)
        return [
            Activity(since_ms + index * bucket_ms, *values)
            for index, values in sorted(counts.items())
        ]

    def _marks(self, count: int) -> str:
        return ", ".join([self.ph] * count)


def _row(values: Sequence[Any]) -> MediaRow:
    # The columns are MediaRow's fields by construction.
    return row_from(zip(COLUMNS, values, strict=True))


def migration_files(backend: str) -> list[tuple[int, Path]]:
    """``(version, path)`` of the backend's migrations, in order (``001_init.sql`` -> 1)."""
    files = sorted((MIGRATIONS / backend).glob("*.sql"))
    return [(int(path.name.split("_", 1)[0]), path) for path in files]


def now_ms() -> int:
    """Wall-clock epoch milliseconds (migration bookkeeping only)."""
    return int(time.time() * 1000)


__all__ = ["SqlStore", "migration_files", "now_ms"]
