"""``mediaflow reconcile``: compare what the projection believes with the bucket and the clock.

Findings:

* ``missing``: the projection says ``stored`` but the object is not in the bucket
  (deleted behind the system's back);
* ``sha256_mismatch``: the object is there but its ``sha256`` metadata differs
  from the hash the projection recorded;
* ``content_mismatch`` (``--verify-bytes`` only): the object's bytes do not
  hash to the recorded sha256 or have another size (bit rot, an object
  overwritten with its metadata copied); a HEAD cannot see this;
* ``stuck``: the media has been in a non-terminal status (detected, retrying,
  redriven) for longer than the threshold.

``--fix`` re-requests the download of every finding through the reprocess
path (:mod:`mediaflow.ops.reprocess`); the downloader writes the object again.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mediaflow.media_state import IN_FLIGHT
from mediaflow.storage.s3 import error_code, head_object, translate

CHUNK_BYTES = 1 << 20


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


@dataclass
class Verification:
    """What ``--verify-bytes`` read: objects and bytes hashed, and the findings."""

    objects: int = 0
    bytes: int = 0
    findings: list[Finding] = field(default_factory=list)


def choose(rows: Sequence[Any], sample: int | None, rng: random.Random | None = None) -> list[Any]:
    """All ``rows``, or ``sample`` of them chosen at random (pure with a seeded ``rng``)."""
    if sample is None or sample >= len(rows):
        return list(rows)
    return (rng or random.Random()).sample(list(rows), sample)


def verify_bytes(
    rows: Iterable[Any], s3: Any, default_bucket: str, *, progress: Any = None
) -> Verification:
    """Read every object of ``rows`` and compare its sha256 and size with the recorded ones.

    ``progress`` counts bytes. A missing object is left to the HEAD check
    (:func:`stored_problems`), which reports it as ``missing``.

    Raises:
        StorageUnavailable: the S3 server is down or refuses the credentials.
    """
    result = Verification()
    for row in rows:
        bucket = row.bucket or default_bucket
        digest, size = hashlib.sha256(), 0
        try:
            body = s3.get_object(Bucket=bucket, Key=row.object_key)["Body"]
            for chunk in body.iter_chunks(CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
                if progress:
                    progress.advance(len(chunk))
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                continue
            raise translate(exc, bucket=bucket) from exc
        except BotoCoreError as exc:
            raise translate(exc, bucket=bucket) from exc
        result.objects += 1
        result.bytes += size
        actual = digest.hexdigest()
        if (row.sha256 and actual != row.sha256) or (row.size is not None and size != row.size):
            result.findings.append(
                Finding(
                    row.media_id,
                    "content_mismatch",
                    row.status,
                    f"bytes hash to {actual[:12]} ({size} B), recorded "
                    f"{(row.sha256 or '-')[:12]} ({row.size} B)",
                    row.client_id,
                    row.object_key,
                )
            )
    if progress:
        progress.close()
    return result


__all__ = [
    "Finding",
    "Verification",
    "check_object",
    "choose",
    "stored_problems",
    "stuck",
    "verify_bytes",
]
