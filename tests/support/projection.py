"""Media events and projection stores for the projection's tests."""

from __future__ import annotations

import functools
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from mediaflow.config import Settings
from mediaflow.events import (
    MediaDeadLettered,
    MediaDetected,
    MediaDismissed,
    MediaDownloadFailed,
    MediaInfo,
    MediaRedriven,
    MediaStored,
    MediaType,
)
from mediaflow.processors.projection.consumer import STAGE

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


async def drain_projection(settings: Settings, idle_exit_s: float = 1.5) -> None:
    """Run the projection in this (async) test until idle, wired as ``mediaflow run`` wires it."""
    async with STAGE.open(settings, STAGE.clients(settings)) as projection:
        await projection.run(idle_exit_s=idle_exit_s)


def at(seconds: float) -> datetime:
    """A moment ``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


def info(
    client: str = "c1", instance: str = "i1", media_type: MediaType = MediaType.IMAGE
) -> MediaInfo:
    return MediaInfo(
        provider="wapi",
        client_id=client,
        instance_id=instance,
        message_id=f"msg-{uuid.uuid4().hex[:8]}",
        chat_id="5511999999999@c.us",
        sender_id="5511888888888",
        media_type=media_type,
        mimetype="image/jpeg",
    )


def detected(media_id: str, t: float = 0, **kw: object) -> MediaDetected:
    return MediaDetected(
        event_id=str(uuid.uuid4()),
        media_id=media_id,
        occurred_at=at(t),
        stage="detector",
        source_event_id=str(uuid.uuid4()),
        info=info(**kw),  # type: ignore[arg-type]
    )


def failed(
    media_id: str, t: float, attempt: int = 1, retryable: bool = True
) -> MediaDownloadFailed:
    return MediaDownloadFailed(
        event_id=str(uuid.uuid4()),
        media_id=media_id,
        occurred_at=at(t),
        stage="downloader",
        attempt=attempt,
        error_kind="timeout",
        error_message=f"attempt {attempt} timed out",
        retryable=retryable,
        next_due_at=at(t + 10) if retryable else None,
    )


def stored(media_id: str, t: float, attempt: int = 1) -> MediaStored:
    return MediaStored(
        event_id=str(uuid.uuid4()),
        media_id=media_id,
        occurred_at=at(t),
        stage="downloader",
        bucket="media",
        key=f"cliente_c1/instance_i1/image/2026/11/28/{media_id}.jpg",
        size=1234,
        sha256="ab" * 32,
        content_type="image/jpeg",
        fetch_path="direct",
        duration_ms=12,
        attempt=attempt,
    )


def dead_lettered(media_id: str, t: float, attempt: int = 5) -> MediaDeadLettered:
    return MediaDeadLettered(
        event_id=str(uuid.uuid4()),
        media_id=media_id,
        occurred_at=at(t),
        stage="downloader",
        error_kind="retries_exhausted",
        error_message="gave up after 5 attempts",
        attempt=attempt,
    )


def redriven(media_id: str, t: float) -> MediaRedriven:
    return MediaRedriven(
        event_id=str(uuid.uuid4()),
        media_id=media_id,
        occurred_at=at(t),
        stage="operator",
        redrive_id=str(uuid.uuid4()),
        operator="ana",
        target_topic="media.download-requested",
    )


def dismissed(media_id: str, t: float) -> MediaDismissed:
    return MediaDismissed(
        event_id=str(uuid.uuid4()),
        media_id=media_id,
        occurred_at=at(t),
        stage="operator",
        operator="ana",
        reason="sender asked",
    )


PG_URL_VARIABLE = "MEDIAFLOW_TEST_PG_URL"


def postgres_url() -> str:
    """The test PostgreSQL's URL, from ``MEDIAFLOW_TEST_PG_URL``: the one place it is read.

    ``make test`` sets it to the PostgreSQL it started: there, a PostgreSQL
    that does not answer fails the test. ``make test-unit`` sets it empty:
    the test is skipped, with the reason. Unset (pytest run by hand), the
    test fails and says how to run it.
    """
    url = os.environ.get(PG_URL_VARIABLE)
    if url is None:
        pytest.fail(
            f"{PG_URL_VARIABLE} is not set: run the suite with `make test` (it starts "
            f"PostgreSQL and sets it), or export it (empty skips the PostgreSQL tests)"
        )
    if not url:
        pytest.skip(f"no PostgreSQL in this run ({PG_URL_VARIABLE} is empty); `make test` runs it")
    _check_reachable(url)
    return url


@functools.cache
def _check_reachable(url: str) -> None:
    """Connect once per run; a failure is not cached, so every test reports it."""
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {url} ({exc}); "
            "`make test` starts it (deploy/postgres.sh up)"
        )


def store_url(backend: str, tmp_path: Path) -> tuple[str, str | None]:
    """A fresh store URL: a temp SQLite file, or a new PostgreSQL schema (returned to drop)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'projection-{uuid.uuid4().hex[:8]}.db'}", None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    return f"{postgres_url()}?schema={schema}", schema


def drop_schema(schema: str) -> None:
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        for name in (schema, f"{schema}__rebuild", f"{schema}__old"):
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
