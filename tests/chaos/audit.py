"""After a chaos run: what became of every accepted media, read from the system's own outputs.

Four sources, none of them the run's own bookkeeping:

* the media event log (``media_events``, read_committed: only what transactions committed);
* the projection (one row per media id: what the API shows a user);
* the bucket (every object, hashed; every multipart upload still open);
* the dead-letter topic (each dead letter's kind, and the webhook it holds).

:func:`tally` compares them with what the run meant each accepted webhook to
become (:class:`Intended`; pure); the ``read_*`` functions do the reading
(I/O). A media meant to be stored meets only faults that pass, so a dead
letter for it, whatever its kind, is a failure of the run, not an accepted
outcome; a media built never to be downloadable must be dead-lettered with a
permanent kind; a fan-out webhook must become exactly one ``too_many_media``
dead letter and none of its media may be detected. The design this proves: the
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
from mediaflow.errors import ErrorKind, MediaflowError
from mediaflow.events import MediaDeadLettered, MediaStored, WebhookReceived
from mediaflow.kafka import headers as h
from mediaflow.kafka.topics import load_layout
from mediaflow.media_state import MediaRow
from mediaflow.storage.projection import ProjectionStore
from tests.support.kafka import read_all

TERMINAL_STATUSES = frozenset({"stored", "dead_lettered"})
NOT_PERMANENT = frozenset(
    {
        ErrorKind.RETRIES_EXHAUSTED,
        ErrorKind.INTERNAL,
        ErrorKind.UNEXPECTED,
        ErrorKind.TIMEOUT,
        ErrorKind.SERVER_ERROR,
        ErrorKind.RATE_LIMITED,
        ErrorKind.CONNECTION,
        ErrorKind.STORAGE_UNAVAILABLE,
        ErrorKind.BROKER_UNAVAILABLE,
    }
)
"""Dead-letter kinds that say the pipeline gave up on something that could pass, not the media."""
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
class FanOut:
    """An accepted webhook built to hold more media than one webhook may.

    Attributes:
        message_id: its WhatsApp message id (names it in the table).
        body: its exact body (the dead letter holds the envelope with it).
        media_ids: the media it holds; none of them may be detected.
    """

    message_id: str
    body: bytes = dataclasses.field(repr=False)
    media_ids: frozenset[str]


@dataclasses.dataclass(frozen=True, slots=True)
class Intended:
    """What the run meant every accepted webhook and media to become.

    Attributes:
        store: media meant to be stored: every fault they meet passes.
        dead: media built never to be downloadable: meant to be dead-lettered
            with a permanent kind.
        fanouts: webhooks meant to become one ``too_many_media`` dead letter each.
    """

    store: frozenset[str]
    dead: frozenset[str] = frozenset()
    fanouts: tuple[FanOut, ...] = ()

    @property
    def media(self) -> frozenset[str]:
        """Every media the audit accounts for one by one (fan-out media excepted)."""
        return self.store | self.dead


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """One record of the dead-letter topic.

    Attributes:
        kind: its ``dlq.error.kind`` header.
        webhook_body: the body of the webhook it holds, when its value is a webhook envelope.
    """

    kind: str
    webhook_body: bytes | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Tally:
    """The end state of a run, per media and per fan-out webhook.

    Attributes:
        expected: media ids the accepted webhooks carry (fan-out media excepted).
        meant_dead: of those, the media built never to be downloadable.
        stored: media stored as meant (event log and projection agree).
        dead_by_reason: error kind -> media dead-lettered as meant, with that kind.
        unintended: media id or webhook -> how it ended otherwise than meant
            (a media meant to be stored dead-lettered, a fan-out media detected...).
        unintended_by_kind: error kind -> media meant to be stored but dead-lettered with it.
        fanouts: fan-out webhooks accepted.
        fanouts_dead_lettered: of those, how many became exactly one ``too_many_media``.
        dlq_by_kind: error kind -> records on the dead-letter topic.
        lost: media id or webhook -> why it is not accounted for.
        duplicated: media id, object key or webhook -> why it counts twice.
        corrupted: media id -> why its object's bytes are wrong.
        repeated_terminal: media with more than one terminal event in the log.
        collapsed: of those, how many the projection shows once, consistently.
        open_uploads: multipart uploads left open.
        undecodable: media events the codec could not read.
    """

    expected: frozenset[str]
    meant_dead: frozenset[str]
    stored: int
    dead_by_reason: Counter[str]
    unintended: dict[str, str]
    unintended_by_kind: Counter[str]
    fanouts: int
    fanouts_dead_lettered: int
    dlq_by_kind: Counter[str]
    lost: dict[str, str]
    duplicated: dict[str, str]
    corrupted: dict[str, str]
    repeated_terminal: int
    collapsed: int
    open_uploads: tuple[str, ...]
    undecodable: int = 0

    @property
    def ok(self) -> bool:
        """Nothing lost, duplicated, corrupted, left open, or ended otherwise than meant."""
        return not (
            self.lost
            or self.duplicated
            or self.corrupted
            or self.open_uploads
            or self.undecodable
            or self.unintended
        )


def tally(
    intended: Intended,
    events: Iterable[Any],
    rows: Mapping[str, MediaRow],
    bucket: Bucket,
    samples_sha256: Mapping[str, str] | None = None,
    *,
    dead_letters: Sequence[DeadLetterRecord] = (),
    undecodable: int = 0,
) -> Tally:
    """Account for every accepted media and fan-out webhook.

    Args:
        intended: what each accepted webhook and media was meant to become.
        events: decoded media events (every type: a fan-out media must have none).
        rows: the projection's rows by media id.
        bucket: the bucket's objects and open uploads.
        samples_sha256: media id -> the plaintext SHA-256 the simulator served, where known.
        dead_letters: every record of the dead-letter topic.
        undecodable: media events that could not be decoded.
    """
    wanted = intended.media
    stored_events: dict[str, list[MediaStored]] = defaultdict(list)
    dead_events: dict[str, list[MediaDeadLettered]] = defaultdict(list)
    seen: set[str] = set()
    for event in events:
        seen.add(event.media_id)
        if isinstance(event, MediaStored):
            stored_events[event.media_id].append(event)
        elif isinstance(event, MediaDeadLettered):
            dead_events[event.media_id].append(event)

    lost: dict[str, str] = {}
    duplicated: dict[str, str] = {}
    corrupted: dict[str, str] = {}
    unintended: dict[str, str] = {}
    dead_by_reason: Counter[str] = Counter()
    unintended_by_kind: Counter[str] = Counter()
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
        meant_dead = media_id in intended.dead
        if stores:
            problem = _object_problem(stores[0], bucket, (samples_sha256 or {}).get(media_id))
            if problem:
                corrupted[media_id] = problem
            if meant_dead:
                unintended[media_id] = "stored, but it was built never to be downloadable"
            else:
                stored += 1
            continue
        kind = row.last_error_kind or deads[-1].error_kind
        if not meant_dead:
            unintended_by_kind[kind] += 1
            unintended[media_id] = f"dead-lettered ({kind}), but it was meant to be stored"
        elif kind in NOT_PERMANENT:
            unintended[media_id] = f"dead-lettered with {kind}, not with the permanent kind meant"
        else:
            dead_by_reason[kind] += 1

    fanouts_dead_lettered = _tally_fanouts(
        intended.fanouts, dead_letters, seen, rows, lost, duplicated, unintended
    )
    named = {e.key for events_of in stored_events.values() for e in events_of}
    for key in sorted(set(bucket.objects) - named):
        duplicated[key] = "object in the bucket that no MediaStored event names"
    return Tally(
        expected=wanted,
        meant_dead=intended.dead,
        stored=stored,
        dead_by_reason=dead_by_reason,
        unintended=unintended,
        unintended_by_kind=unintended_by_kind,
        fanouts=len(intended.fanouts),
        fanouts_dead_lettered=fanouts_dead_lettered,
        dlq_by_kind=Counter(d.kind for d in dead_letters),
        lost=lost,
        duplicated=duplicated,
        corrupted=corrupted,
        repeated_terminal=repeated,
        collapsed=collapsed,
        open_uploads=tuple(bucket.open_uploads),
        undecodable=undecodable,
    )


def _tally_fanouts(
    fanouts: Sequence[FanOut],
    dead_letters: Sequence[DeadLetterRecord],
    seen: set[str],
    rows: Mapping[str, MediaRow],
    lost: dict[str, str],
    duplicated: dict[str, str],
    unintended: dict[str, str],
) -> int:
    """Check each fan-out webhook became one ``too_many_media`` dead letter; return how many did.

    Its media must appear nowhere (no event, no projection row), and every
    ``too_many_media`` dead letter must be one of these webhooks'.
    """
    refused = Counter(
        d.webhook_body for d in dead_letters if d.kind == ErrorKind.TOO_MANY_MEDIA.value
    )
    ok = 0
    for fanout in fanouts:
        name = f"fan-out webhook {fanout.message_id}"
        count = refused.pop(fanout.body, 0)
        if count == 0:
            lost[name] = "no too_many_media dead letter holds it"
        elif count > 1:
            duplicated[name] = f"{count} too_many_media dead letters hold it"
        else:
            ok += 1
        started = sorted(m for m in fanout.media_ids if m in seen or m in rows)
        if started:
            unintended[name] = f"{len(started)} of its {len(fanout.media_ids)} media were detected"
    for index, count in enumerate(refused.values(), 1):
        unintended[f"too_many_media dead letter #{index}"] = (
            f"{count} of them hold a webhook that is not one of the run's fan-outs"
        )
    return ok


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

    def row(label: str, value: int, indent: int = 0) -> str:
        return f"{' ' * indent}{label:<{44 - indent}} {value:>7}"

    meant_store = len(t.expected) - len(t.meant_dead)
    lines = [
        row("webhooks accepted (HTTP 200)", accepted_webhooks),
        row("media meant to be stored", meant_store),
        row("stored (sha256 verified)", t.stored - len(t.corrupted), 2),
        row("dead-lettered instead", sum(t.unintended_by_kind.values()), 2),
    ]
    lines += [row(kind, n, 4) for kind, n in sorted(t.unintended_by_kind.items())]
    lines += [
        row("media meant to be dead-lettered", len(t.meant_dead)),
        row("dead-lettered with a permanent kind", sum(t.dead_by_reason.values()), 2),
    ]
    lines += [row(kind, n, 4) for kind, n in sorted(t.dead_by_reason.items())]
    lines += [
        row("fan-out webhooks (over the media cap)", t.fanouts),
        row("one too_many_media dead letter each", t.fanouts_dead_lettered, 2),
        row("records on the dead-letter topic", sum(t.dlq_by_kind.values())),
    ]
    lines += [row(kind, n, 2) for kind, n in sorted(t.dlq_by_kind.items())]
    lines += [
        row("ended otherwise than meant", len(t.unintended)),
        row("lost", len(t.lost)),
        row("duplicated", len(t.duplicated)),
        row("corrupted", len(t.corrupted)),
        row("multipart uploads left open", len(t.open_uploads)),
        row("repeated terminal events in the log", t.repeated_terminal),
        row("collapsed by the projection", t.collapsed, 2),
    ]
    problems = (
        ("UNINTENDED", t.unintended),
        ("LOST", t.lost),
        ("DUPLICATED", t.duplicated),
        ("CORRUPTED", t.corrupted),
    )
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


def read_dead_letters(settings: Settings, timeout_s: float = 60.0) -> list[DeadLetterRecord]:
    """Every committed record of the dead-letter topic: its kind, and the webhook it holds."""
    codec = AvroCodec()
    topic = load_layout(settings.kafka).dead_letters
    records: list[DeadLetterRecord] = []
    for message in read_all(settings, topic, timeout=timeout_s):
        kind = h.to_dict(message.headers()).get(h.DLQ_ERROR_KIND, "")
        body = None
        if message.value():
            try:
                body = codec.decode(message.value(), WebhookReceived).body
            except MediaflowError:
                body = None  # a download request or another stage's record: no webhook
        records.append(DeadLetterRecord(kind, body))
    return records


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
    "NOT_PERMANENT",
    "Bucket",
    "DeadLetterRecord",
    "FanOut",
    "Intended",
    "Tally",
    "projection_rows",
    "read_bucket",
    "read_dead_letters",
    "read_media_events",
    "render",
    "tally",
]
