"""The embedded projection store: one SQLite file in WAL mode (readers never block the writer).

A rebuild fills a sibling file and is swapped in with SQLite's online backup
API rather than by renaming files: renaming a WAL-mode database under open
connections would leave the old ``-wal`` file next to the new database, and
the next opener would replay foreign pages into it. The backup copies the new
pages in one write transaction, so every other connection sees either the old
store or the new one, never a mix.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mediaflow.errors import ConfigError
from mediaflow.storage.projection._sql import SqlStore, migration_files, now_ms

BUSY_TIMEOUT_MS = 30_000


class SqliteStore(SqlStore):
    """A projection store in one SQLite file.

    Args:
        path: the database file; created (with its folder) if missing.

    Raises:
        ConfigError: the file cannot be opened or is not a database.
    """

    ph = "?"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        # One connection shared by the API's worker threads, serialised by a lock.
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            _migrate(self._conn)
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(
                f"cannot open the projection database {self.path}: {exc}; "
                "check MEDIAFLOW_PROJECTION_DB_URL"
            ) from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            # IMMEDIATE takes the write lock up front: two writers queue instead of deadlocking.
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    @contextmanager
    def _cursor(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            yield self._conn.cursor()

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER PRIMARY KEY, applied_at INTEGER)"
    )
    current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
    for version, path in migration_files("sqlite"):
        if version <= current:
            continue
        conn.executescript(
            f"BEGIN IMMEDIATE;\n{path.read_text()}\n"
            f"INSERT INTO schema_version VALUES ({version}, {now_ms()});\n"
            f"INSERT OR IGNORE INTO meta VALUES ('generation', '{uuid.uuid4()}');\nCOMMIT;"
        )


class SqliteRebuild:
    """A fresh SQLite store next to the live one (``<file>.rebuild``), swapped in by backup."""

    def __init__(self, live: Path) -> None:
        self.live = Path(live)
        self.target = self.live.with_name(self.live.name + ".rebuild")
        _remove(self.target)
        self.store = SqliteStore(self.target)
        self.url = f"sqlite:///{self.target}"
        # Built once over the full table at the swap: cheaper than updating
        # five indexes with every row written during the rebuild.
        with self.store._lock:
            self._indexes = [
                (name, statement)
                for name, statement in self.store._conn.execute(
                    "SELECT name, sql FROM sqlite_master "
                    "WHERE type = 'index' AND tbl_name = 'media' AND sql IS NOT NULL"
                )
            ]
            for name, _ in self._indexes:
                self.store._conn.execute(f'DROP INDEX "{name}"')

    def swap(self) -> None:
        """Build the indexes, then copy the rebuilt database over the live one in one write."""
        live = sqlite3.connect(self.live, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            with self.store._lock:
                for _, statement in self._indexes:
                    self.store._conn.execute(statement)
                self.store._conn.backup(live)
        finally:
            live.close()
            self.store.close()
            _remove(self.target)

    def discard(self) -> None:
        """Delete the rebuilt file."""
        self.store.close()
        _remove(self.target)


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


__all__ = ["SqliteRebuild", "SqliteStore"]
