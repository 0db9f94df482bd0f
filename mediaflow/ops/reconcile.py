"""``mediaflow reconcile``: compare what the projection believes with the bucket and the clock.

Findings:

* ``missing``: the projection says ``stored`` but the object is not in the bucket
  (deleted behind the system's back);
* ``sha256_mismatch``: the object is there but its ``sha256`` metadata differs
  from the hash the projection recorded;
* ``stuck``: the media has been in a non-terminal status (detected, retrying,
  redriven) for longer than the threshold.

``--fix`` re-requests the download of every finding through the reprocess
path (:mod:`mediaflow.ops.reprocess`); the downloader writes the object again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mediaflow.media_state import IN_FLIGHT
from mediaflow.storage.s3 import head_object


@dataclass(frozen=True, slots=True)
class Finding:
    """One media whose recorded state does not match reality."""

    media_id: str
    problem: str
    status: str
    detail: str
    client_id: str | None = None
    object_key: str | None = None


def stuck(rows: Iterable[Any], *, now_ms: int, older_than_s: float) -> list[Finding]:
    """Rows in a non-terminal status since before ``now - older_than`` (pure)."""
    limit = now_ms - older_than_s * 1000
    return [
        Finding(
            row.media_id,
            "stuck",
            row.status,
            f"{row.status} for {round((now_ms - row.status_at) / 1000)} s",
            row.client_id,
        )
        for row in rows
        if row.status in IN_FLIGHT and row.status_at < limit
    ]


def check_object(row: Any, head: dict[str, Any] | None) -> Finding | None:
    """Compare a ``stored`` row with the object's HEAD answer (``None``: no object). Pure."""
    if head is None:
        return Finding(
            row.media_id,
            "missing",
            row.status,
            f"no object at {row.object_key}",
            row.client_id,
            row.object_key,
        )
    actual = dict(head.get("Metadata", {})).get("sha256", "")
    if row.sha256 and actual != row.sha256:
        return Finding(
            row.media_id,
            "sha256_mismatch",
            row.status,
            f"object sha256 {actual[:12] or '-'} != recorded {row.sha256[:12]}",
            row.client_id,
            row.object_key,
        )
    return None


def stored_problems(
    rows: Iterable[Any], s3: Any, default_bucket: str, *, progress: Any = None
) -> list[Finding]:
    """HEAD the object of every ``stored`` row and report those that do not match."""
    findings = []
    for row in rows:
        if row.status != "stored" or not row.object_key:
            continue
        finding = check_object(row, head_object(s3, row.bucket or default_bucket, row.object_key))
        if finding:
            findings.append(finding)
        if progress:
            progress.advance()
    if progress:
        progress.close()
    return findings


__all__ = ["Finding", "check_object", "stored_problems", "stuck"]
