"""Projection state in SQL: SQLite by default, PostgreSQL by URL.

``sqlite:///path/to/projection.db`` or ``postgresql://user@host:port/db[?schema=NAME]``
(``settings.projection_db_url``). Migrations in ``migrations/<backend>/`` run on open.
Each backend module is imported only when its URL is opened, so a SQLite
deployment never loads psycopg.
"""

from __future__ import annotations

from mediaflow.errors import ConfigError
from mediaflow.storage.projection.base import (
    Activity,
    DailyCount,
    LogRecord,
    MediaQuery,
    Page,
    ProjectionStore,
    Rebuild,
    Stats,
    StoreReplaced,
)


def _sqlite_path(url: str) -> str:
    path = url.removeprefix("sqlite:///")
    if not path:
        raise ConfigError("MEDIAFLOW_PROJECTION_DB_URL=sqlite:/// names no file")
    # sqlite:////abs/path and sqlite:///abs/path both mean an absolute path here.
    return path if path.startswith("/") else f"/{path}"


def open_store(url: str) -> ProjectionStore:
    """Open (creating and migrating as needed) the store at ``url``.

    Raises:
        ConfigError: the URL scheme is not ``sqlite:///`` or ``postgresql://``.
        StorageUnavailable: PostgreSQL cannot be reached.
    """
    if url.startswith("sqlite:///"):
        from mediaflow.storage.projection.sqlite import SqliteStore

        return SqliteStore(_sqlite_path(url))  # type: ignore[arg-type]
    if url.startswith(("postgresql://", "postgres://")):
        from mediaflow.storage.projection.postgres import PostgresStore

        return PostgresStore(url)
    raise ConfigError(
        "MEDIAFLOW_PROJECTION_DB_URL must start with sqlite:/// or postgresql:// "
        f"(got {url.split(':', 1)[0]}:...)"
    )


def open_rebuild(url: str) -> Rebuild:
    """Start a fresh store beside the live one at ``url``, to fill and then swap in.

    Raises:
        ConfigError: the URL scheme is not supported.
        StorageUnavailable: PostgreSQL cannot be reached.
    """
    if url.startswith("sqlite:///"):
        from pathlib import Path

        from mediaflow.storage.projection.sqlite import SqliteRebuild

        return SqliteRebuild(Path(_sqlite_path(url)))
    if url.startswith(("postgresql://", "postgres://")):
        from mediaflow.storage.projection.postgres import PostgresRebuild

        return PostgresRebuild(url)
    raise ConfigError("MEDIAFLOW_PROJECTION_DB_URL must start with sqlite:/// or postgresql://")


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
    "open_rebuild",
    "open_store",
]
