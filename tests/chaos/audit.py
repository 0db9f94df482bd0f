"""After a chaos run: what became of every accepted media, read from the system's own outputs.

Three sources, none of them the run's own bookkeeping:

* the media event log (``media_events``, read_committed: only what transactions committed);
* the projection (one row per media id: what the API shows a user);
* the bucket (every object, hashed; every multipart upload still open).

:func:`tally` compares them with the media ids the accepted webhooks carry
(pure); :func:`collect` does the reading (I/O). The design this proves: the
event log may hold a *second* terminal event for a media (a request
redelivered after a crash or rebalance is answered again from the idempotent
store), but every such repeat names the same object key and hash, and the
projection collapses them into one row in one terminal state. Anything else
(a media under two keys, an object no event names, repeats the projection
shows differently) counts as duplicated.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.errors import MediaflowError
from mediaflow.events import MediaDeadLettered, MediaStored
from mediaflow.kafka.topics import load_layout
from mediaflow.media_state import MediaRow
from mediaflow.storage.projection import ProjectionStore
from tests.support.kafka import read_all

TERMINAL_STATUSES = frozenset({"stored", "dead_lettered"})
MULTIPART_MARKER = ".mpus-"
"""S3Proxy's filesystem backend keeps an in-progress multipart upload as an object named so."""


@dataclasses.dataclass(frozen=True, slots=True)
class Bucket:
    """What the bucket holds.

    Attributes:
        objects: object key -> SHA-256 (hex) of its bytes, as read back.
        open_uploads: keys of multipart uploads still in progress.
    """

    objects: Mapping[str, str]
    open_uploads: Sequence[str]


@dataclasses.dataclass(frozen=True, slots=True)
class Tally:
    """The end state of a run, per media.

    Attributes:
        expected: media ids the accepted webhooks carry.
        stored: expected media stored (event log and projection agree).
        dead_by_reason: error kind -> expected media dead-lettered with it.
        lost: media id -> why it is not accounted for.
        duplicated: media id or object key -> why it counts as stored twice.
        corrupted: media id -> why its object's bytes are wrong.
        repeated_terminal: media with more than one terminal event in the log.
        collapsed: of those, how many the projection shows once, consistently.
        open_uploads: multipart uploads left open.
        undecodable: media events the codec could not read.
    """

    expected: frozenset[str]
    stored: int
    dead_by_reason: Counter[str]
    lost: dict[str, str]
    duplicated: dict[str, str]
    corrupted: dict[str, str]
    repeated_terminal: int
    collapsed: int
    open_uploads: tuple[str, ...]
    undecodable: int = 0

    @property
    def ok(self) -> bool:
        """Nothing lost, duplicated, corrupted or left open."""
        return not (
            self.lost or self.duplicated or self.corrupted or self.open_uploads or self.undecodable
        )


def tally(
    expected: Iterable[str],
    events: Iterable[Any],
    rows: Mapping[str, MediaRow],
    bucket: Bucket,
    samples_sha256: Mapping[str, str] | None = None,
    *,
    undecodable: int = 0,
) -> Tally:
    """Account for every expected media.

    Args:
        expected: media ids of the accepted webhooks (downloadable or not).
        events: decoded media events (other types than stored/dead-lettered are ignored).
        rows: the projection's rows by media id.
        bucket: the bucket's objects and open uploads.
        samples_sha256: media id -> the plaintext SHA-256 the simulator served, where known.
        undecodable: media events that could not be decoded.
    """
    wanted = frozenset(expected)
    stored_events: dict[str, list[MediaStored]] = defaultdict(list)
    dead_events: dict[str, list[MediaDeadLettered]] = defaultdict(list)
    for event in events:
        if isinstance(event, MediaStored):
            stored_events[event.media_id].append(event)
        elif isinstance(event, MediaDeadLettered):
            dead_events[event.media_id].append(event)

    lost: dict[str, str] = {}
    duplicated: dict[str, str] = {}
    corrupted: dict[str, str] = {}
    dead_by_reason: Counter[str] = Counter()
    stored = repeated = collapsed = 0
    for media_id in sorted(wanted):
        stores, deads = stored_events.get(media_id, []), dead_events.get(media_id, [])
        row = rows.get(media_id)
        if not stores and not deads:
            lost[media_id] = "no terminal event in the log"
            continue
        if row is None or row.status not in TERMINAL_STATUSES:
            lost[media_id] = f"projection shows {row.status if row else 'no row'}"
            continue
        keys = {e.key for e in stores}
        if len(keys) > 1:
            duplicated[media_id] = f"stored under {len(keys)} keys: {sorted(keys)}"
            continue
        if len(stores) + len(deads) > 1:
            repeated += 1
            if _collapsed(row, stores, deads):
                collapsed += 1
            else:
                duplicated[media_id] = (
                    f"{len(stores)} stored + {len(deads)} dead-lettered events; "
                    f"projection shows {row.status} {row.object_key}"
                )
                continue
        if stores:
            stored += 1
            problem = _object_problem(stores[0], bucket, (samples_sha256 or {}).get(media_id))
            if problem:
                corrupted[media_id] = problem
        else:
            dead_by_reason[row.last_error_kind or deads[-1].error_kind] += 1

    named = {e.key for events_of in stored_events.values() for e in events_of}
    for key in sorted(set(bucket.objects) - named):
        duplicated[key] = "object in the bucket that no MediaStored event names"
    return Tally(
        expected=wanted,
        stored=stored,
        dead_by_reason=dead_by_reason,
        lost=lost,
        duplicated=duplicated,
        corrupted=corrupted,
        repeated_terminal=repeated,
        collapsed=collapsed,
        open_uploads=tuple(bucket.open_uploads),
        undecodable=undecodable,
    )


def _collapsed(row: MediaRow, stores: list[MediaStored], deads: list[MediaDeadLettered]) -> bool:
    """Whether the projection shows repeated terminal events as one consistent state."""
    if stores:
        # Stored wins over an earlier dead letter (a redrive that then worked);
        # every repeat must name the object the row names.
        return row.status == "stored" and row.object_key == stores[0].key
    return row.status == "dead_lettered"


def _object_problem(event: MediaStored, bucket: Bucket, sample_sha256: str | None) -> str | None:
    actual = bucket.objects.get(event.key)
    if actual is None:
        return f"object {event.key} is missing from the bucket"
    if actual != event.sha256:
        return f"object {event.key} hashes to {actual}, the event says {event.sha256}"
    if sample_sha256 is not None and actual != sample_sha256:
        return f"object {event.key} hashes to {actual}, the simulator served {sample_sha256}"
    return None


def render(t: Tally, accepted_webhooks: int) -> str:
    """The chaos table, for terminals."""
    dead = sum(t.dead_by_reason.values())
    lines = [
        f"{'webhooks accepted (HTTP 200)':<36} {accepted_webhooks:>7}",
        f"{'media accepted':<36} {len(t.expected):>7}",
        f"{'stored (sha256 verified)':<36} {t.stored - len(t.corrupted):>7}",
        f"{'dead-lettered':<36} {dead:>7}",
    ]
    lines += [f"  {reason:<34} {n:>7}" for reason, n in sorted(t.dead_by_reason.items())]
    lines += [
        f"{'lost':<36} {len(t.lost):>7}",
        f"{'duplicated':<36} {len(t.duplicated):>7}",
        f"{'corrupted':<36} {len(t.corrupted):>7}",
        f"{'multipart uploads left open':<36} {len(t.open_uploads):>7}",
        f"{'repeated terminal events in the log':<36} {t.repeated_terminal:>7}",
        f"{'  collapsed by the projection':<36} {t.collapsed:>7}",
    ]
    problems = (("LOST", t.lost), ("DUPLICATED", t.duplicated), ("CORRUPTED", t.corrupted))
    for title, items in problems:
        for name, why in sorted(items.items())[:20]:
            lines.append(f"{title}: {name}: {why}")
    lines += [f"OPEN UPLOAD: {key}" for key in t.open_uploads[:20]]
    return "\n".join(lines)


# ---------------------------------------------------------------------- I/O


def read_media_events(settings: Settings, timeout_s: float = 120.0) -> tuple[list[Any], int]:
    """Every committed media event, decoded; and how many could not be decoded."""
    codec = AvroCodec()
    topic = load_layout(settings.kafka).media_events
    events: list[Any] = []
    bad = 0
    for message in read_all(settings, topic, timeout=timeout_s):
        try:
            events.append(codec.decode(message.value()))
        except MediaflowError:
            bad += 1
    return events, bad


def read_bucket(settings: Settings) -> Bucket:
    """Hash every object in the run's bucket and list the uploads still open."""
    from mediaflow.storage.s3 import s3_client

    s3 = s3_client(settings.s3)
    bucket = settings.s3.bucket
    objects: dict[str, str] = {}
    open_uploads: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            key = item["Key"]
            if MULTIPART_MARKER in key:
                open_uploads.append(key)
                continue
            digest = hashlib.sha256()
            for chunk in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(1 << 20):
                digest.update(chunk)
            objects[key] = digest.hexdigest()
    for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        open_uploads.append(f"{upload['Key']} (upload {upload['UploadId'][:12]})")
    return Bucket(objects, tuple(open_uploads))


def projection_rows(store: ProjectionStore) -> dict[str, MediaRow]:
    """Every projection row by media id.

    Raises:
        AssertionError: the store yields a media id twice (one row per media is the contract).
    """
    rows: dict[str, MediaRow] = {}
    for row in store.rows():
        assert row.media_id not in rows, f"projection holds two rows for {row.media_id}"
        rows[row.media_id] = row
    return rows


__all__ = [
    "Bucket",
    "Tally",
    "projection_rows",
    "read_bucket",
    "read_media_events",
    "render",
    "tally",
]
