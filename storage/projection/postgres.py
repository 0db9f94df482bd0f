"""The shared projection store: PostgreSQL (psycopg 3), for several nodes and projection copies.

The tables live in one schema (``?schema=NAME`` in the URL, default
``mediaflow_projection``). Several projection copies can write to it: each
batch locks the offset rows of its partitions (``FOR UPDATE``) before reading
them, so a partition handed from one copy to another during a rebalance is
never applied twice.

A rebuild fills the schema ``<schema>__rebuild`` and swaps it in with two
``ALTER SCHEMA ... RENAME`` in one transaction. Connections resolve table
names through ``search_path`` at every statement (prepared statements are
turned off for that reason), so they see the new tables at once.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from mediaflow.errors import ConfigError, StorageUnavailable
from mediaflow.storage.projection._sql import SqlStore, migration_files, now_ms

DEFAULT_SCHEMA = "mediaflow_projection"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


def split_url(url: str) -> tuple[str, str]:
    """Return ``(libpq URL, schema)`` from a URL that may carry ``?schema=NAME``.

    Raises:
        ConfigError: the schema name is not a plain lower-case identifier.
    """
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    schema = query.pop("schema", DEFAULT_SCHEMA)
    if not _IDENTIFIER.match(schema):
        raise ConfigError(
            f"schema {schema!r} in MEDIAFLOW_PROJECTION_DB_URL is not [a-z_][a-z0-9_]*"
        )
    return urlunsplit(parts._replace(query=urlencode(query))), schema


def connect(conninfo: str) -> psycopg.Connection:
    """Open an autocommit connection without prepared statements.

    Raises:
        StorageUnavailable: the server cannot be reached.
    """
    try:
        return psycopg.connect(
            conninfo, autocommit=True, prepare_threshold=None, connect_timeout=10
        )
    except psycopg.OperationalError as exc:
        host = urlsplit(conninfo).hostname
        raise StorageUnavailable(
            f"PostgreSQL at {host} is unreachable ({type(exc).__name__}); "
            "start it (deploy/postgres.sh up) or fix MEDIAFLOW_PROJECTION_DB_URL"
        ) from exc


class PostgresStore(SqlStore):
    """A projection store in one PostgreSQL schema.

    Args:
        url: ``postgresql://user@host:port/db[?schema=NAME]``.

    Raises:
        StorageUnavailable: the server cannot be reached.
        ConfigError: the schema name is invalid.
    """

    ph = "%s"
    lock_clause = " FOR UPDATE"

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.conninfo, default_schema = split_url(url)
        self.schema = schema or default_schema
        self._lock = threading.RLock()
        self._conn = connect(self.conninfo)
        self._conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
        )
        self._conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        _migrate(self._conn)

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor]:
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            yield cur

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor]:
        with self._lock, self._conn.cursor() as cur:
            yield cur

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()


def _migrate(conn: psycopg.Connection) -> None:
    with conn.transaction():
        # One migrator at a time per database, even with several copies starting together.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()))")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, applied_at BIGINT)"
        )
        row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
        current = int(row[0]) if row else 0
        for version, path in migration_files("postgres"):
            if version <= current:
                continue
            conn.execute(path.read_text().encode())
            conn.execute("INSERT INTO schema_version VALUES (%s, %s)", (version, now_ms()))
            conn.execute(
                "INSERT INTO meta VALUES ('generation', %s) ON CONFLICT DO NOTHING",
                (str(uuid.uuid4()),),
            )


class PostgresRebuild:
    """A fresh schema ``<schema>__rebuild``, renamed over the live schema on :meth:`swap`."""

    def __init__(self, url: str) -> None:
        conninfo, self.live = split_url(url)
        self.target = f"{self.live}__rebuild"
        with connect(conninfo) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.target))
            )
        self.store = PostgresStore(url, schema=self.target)
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query), schema=self.target)
        self.url = urlunsplit(parts._replace(query=urlencode(query)))
        # Built once over the full table at the swap: cheaper than updating
        # every secondary index with each row written during the rebuild.
        with connect(self.store.conninfo) as conn:
            self._indexes = [
                (name, statement)
                for name, statement in conn.execute(
                    "SELECT i.indexname, i.indexdef FROM pg_indexes i "
                    "JOIN pg_class c ON c.relname = i.indexname "
                    "JOIN pg_index x ON x.indexrelid = c.oid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = i.schemaname "
                    "WHERE i.schemaname = %s AND i.tablename = 'media' AND NOT x.indisprimary",
                    (self.target,),
                )
            ]
            for name, _ in self._indexes:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(self.target, name)))

    def swap(self) -> None:
        """Build the indexes, then rename the rebuilt schema over the live one atomically."""
        old = sql.Identifier(f"{self.live}__old")
        live = sql.Identifier(self.live)
        with connect(self.store.conninfo) as conn:
            for _, statement in self._indexes:
                conn.execute(statement)  # type: ignore[arg-type]  # pg_indexes' definition
        with connect(self.store.conninfo) as conn, conn.transaction():
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(old))
            # A first rebuild into a database no projection has used yet has no live schema.
            if conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.live,)
            ).fetchone():
                conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(live, old))
            conn.execute(
                sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(sql.Identifier(self.target), live)
            )
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(old))
        self.store.close()

    def discard(self) -> None:
        """Drop the rebuilt schema."""
        self.store.close()
        with connect(self.store.conninfo) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.target))
            )


__all__ = ["DEFAULT_SCHEMA", "PostgresRebuild", "PostgresStore", "connect", "split_url"]
