"""The independent oracle: the simulator's ledger held against the bucket and the topics.

It shares no code with the pipeline (a test asserts it imports nothing from
``mediaflow``): the ledger says by construction which media every webhook
holds, their plaintext SHA-256 and their intended fate (:mod:`simulator.ledger`);
the bucket is read with plain boto3 (list, download, hash); the event log and
the dead-letter topic with ``confluent_kafka`` (read_committed) and an Avro
decoder built by fastavro from the ``.avsc`` files themselves.

Per media of an accepted webhook, :func:`audit` (pure) checks:

* ``store``: exactly one object holds its bytes, under
  ``cliente_{client}/instance_{instance}/{type}/{yyyy}/{mm}/{dd}/{message}-{sha12}.``;
  an event of the log names that key with that hash; no dead letter names it
  (``retries_exhausted`` included: the chaos run's faults all pass);
* any other fate (``invalid_payload``, ``too_many_media``...): exactly one
  dead letter for its message, of exactly that kind; nothing stored; a
  fan-out's media never detected.

And across the run: no object whose bytes the ledger does not have, no media
detected that the ledger does not hold, no dead letter for a message outside
the ledger, no multipart upload left open, no undecodable record. A webhook
that was not answered 200 may or may not have got in: its media may be stored
(with the right bytes) or absent, and are otherwise not held to a fate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
import fastavro
from botocore.config import Config
from confluent_kafka import Consumer, KafkaError, TopicPartition
from fastavro.schema import fingerprint, to_parsing_canonical_form

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
MAGIC = b"\xc3\x01"
"""Avro single-object encoding: these two bytes, the 8-byte fingerprint, the body."""
MULTIPART_MARKER = ".mpus-"
"""S3Proxy's filesystem backend keeps an in-progress multipart upload as an object named so."""
KIND_HEADER = "dlq.error.kind"
MEDIA_ID_HEADER = "dlq.media-id"

STORE = "store"
"""The fate of a media meant to be stored."""

Message = tuple[str, str, str]
"""(provider, instance id, message id): names a WhatsApp message, hence its media."""


@dataclasses.dataclass(frozen=True, slots=True)
class LedgerMedia:
    """One line of the simulator's ledger (``simulator/ledger.py`` writes it).

    Attributes:
        provider: the provider whose webhook carries it.
        client_id: the tenant's client (first segment of its key).
        instance_id: the provider instance.
        message_id: the WhatsApp message that carries it.
        media_type: ``image``, ``video``, ``audio``, ``document`` or ``sticker``.
        day: ``yyyy/mm/dd`` of the message timestamp.
        sha256: hex SHA-256 of its plaintext.
        size: plaintext length in bytes.
        fate: :data:`STORE` or the dead-letter kind it was built to have.
        accepted: whether the receiver answered its webhook 200.
    """

    provider: str
    client_id: str
    instance_id: str
    message_id: str
    media_type: str
    day: str
    sha256: str
    size: int
    fate: str
    accepted: bool | None = None


def read_ledger(path: Path) -> list[LedgerMedia]:
    """Read a ledger file: one JSON object a line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [LedgerMedia(**json.loads(line)) for line in lines if line.strip()]


# ---------------------------------------------------------------- what was read


@dataclasses.dataclass(frozen=True, slots=True)
class Detected:
    """A ``MediaDetected`` event: which message a media id belongs to."""

    media_id: str
    message: Message


@dataclasses.dataclass(frozen=True, slots=True)
class StoredEvent:
    """A ``MediaStored`` event."""

    media_id: str
    key: str
    sha256: str


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead-letter record: its kind, and the message its value or media id names."""

    kind: str
    message: Message | None = None
    media_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Outputs:
    """Everything the pipeline left behind, as the oracle read it."""

    objects: Mapping[str, str]
    open_uploads: Sequence[str] = ()
    detected: Sequence[Detected] = ()
    stored: Sequence[StoredEvent] = ()
    dead_letters: Sequence[DeadLetter] = ()
    undecodable: int = 0


# -------------------------------------------------------------------- verdict


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """What the oracle found.

    Attributes:
        accepted_by_fate: fate -> media of accepted webhooks in the ledger.
        stored: media meant to be stored, stored once with the right bytes and key.
        dead_as_meant: kind -> media dead-lettered with exactly the kind meant.
        dlq_by_kind: kind -> records on the dead-letter topic.
        unacknowledged: media of webhooks not answered 200 (any outcome but a wrong one is fine).
        problems: category -> one line per problem (empty when the run is right).
    """

    accepted_by_fate: Counter[str]
    stored: int
    dead_as_meant: Counter[str]
    dlq_by_kind: Counter[str]
    unacknowledged: int
    problems: Mapping[str, Sequence[str]]

    @property
    def ok(self) -> bool:
        """Every media ended as meant and nothing else appeared."""
        return not any(self.problems.values())

    def count(self, category: str) -> int:
        """Problems of one category (``lost``, ``duplicated``...)."""
        return len(self.problems.get(category, ()))


CATEGORIES = (
    "lost",
    "duplicated",
    "corrupted",
    "wrong_key",
    "wrong_dead_letter",
    "unexpected_media",
    "unexpected_object",
    "unexpected_dead_letter",
    "open_upload",
    "undecodable",
)


def audit(ledger: Sequence[LedgerMedia], outputs: Outputs) -> Verdict:
    """Hold ``outputs`` against ``ledger``; see the module docstring for the rules."""
    problems: dict[str, list[str]] = defaultdict(list)
    by_sha: dict[str, list[str]] = defaultdict(list)
    for key, sha in outputs.objects.items():
        by_sha[sha].append(key)
    media_of: dict[str, Message] = {d.media_id: d.message for d in outputs.detected}
    detected_messages = set(media_of.values())
    stored_keys: dict[str, set[str]] = defaultdict(set)
    for event in outputs.stored:
        stored_keys[event.key].add(event.sha256)
    dead_by_message: dict[Message, list[str]] = defaultdict(list)
    for letter in outputs.dead_letters:
        message = letter.message or media_of.get(letter.media_id or "")
        if message is None:
            problems["unexpected_dead_letter"].append(
                f"{letter.kind} dead letter naming no message (media id {letter.media_id})"
            )
            continue
        dead_by_message[message].append(letter.kind)

    known_sha = {e.sha256 for e in ledger}
    known_messages = {(e.provider, e.instance_id, e.message_id) for e in ledger}
    accepted_by_fate: Counter[str] = Counter()
    dead_as_meant: Counter[str] = Counter()
    stored = unacknowledged = 0
    for entry in ledger:
        message = (entry.provider, entry.instance_id, entry.message_id)
        name = (
            f"{entry.media_type} {entry.sha256[:12]} of {entry.provider} message {entry.message_id}"
        )
        keys = sorted(by_sha.get(entry.sha256, ()))
        if not entry.accepted:
            unacknowledged += 1
            if len(keys) > 1:
                problems["duplicated"].append(f"{name}: stored under {keys}")
            continue
        accepted_by_fate[entry.fate] += 1
        kinds = dead_by_message.get(message, [])
        if entry.fate == STORE:
            if kinds:
                problems["wrong_dead_letter"].append(
                    f"{name}: dead-lettered ({', '.join(sorted(kinds))}), meant to be stored"
                )
            if not keys:
                problems["lost"].append(f"{name}: no object holds its bytes")
                continue
            if len(keys) > 1:
                problems["duplicated"].append(f"{name}: stored under {keys}")
                continue
            key = keys[0]
            prefix = (
                f"cliente_{entry.client_id}/instance_{entry.instance_id}/{entry.media_type}/"
                f"{entry.day}/{entry.message_id}-{entry.sha256[:12]}."
            )
            if not key.startswith(prefix):
                problems["wrong_key"].append(f"{name}: stored as {key}, expected {prefix}*")
            elif stored_keys.get(key) != {entry.sha256}:
                problems["corrupted"].append(
                    f"{name}: the event log names {key} with {sorted(stored_keys.get(key, ()))}"
                )
            elif not kinds:
                stored += 1
            continue
        if keys:
            problems["unexpected_object"].append(f"{name}: stored as {keys}, meant {entry.fate}")
        if entry.fate == "too_many_media" and message in detected_messages:
            problems["unexpected_media"].append(f"{name}: detected, its webhook fans out")
        if not kinds:
            problems["lost"].append(f"{name}: no dead letter, meant {entry.fate}")
        elif set(kinds) != {entry.fate}:
            problems["wrong_dead_letter"].append(
                f"{name}: dead-lettered {sorted(kinds)}, meant {entry.fate}"
            )
        elif len(kinds) > 1:
            problems["duplicated"].append(f"{name}: {len(kinds)} dead letters for its message")
        elif not keys:
            dead_as_meant[entry.fate] += 1

    for sha, keys in sorted(by_sha.items()):
        if sha not in known_sha:
            problems["unexpected_object"].extend(
                f"{key}: bytes (sha256 {sha[:12]}) of no media in the ledger" for key in keys
            )
    for message in sorted(detected_messages - known_messages):
        problems["unexpected_media"].append(f"media of {message} detected: not in the ledger")
    for message in sorted(set(dead_by_message) - known_messages):
        problems["unexpected_dead_letter"].append(
            f"{sorted(dead_by_message[message])} for {message}: not in the ledger"
        )
    problems["open_upload"].extend(outputs.open_uploads)
    if outputs.undecodable:
        problems["undecodable"].append(f"{outputs.undecodable} records")
    return Verdict(
        accepted_by_fate=accepted_by_fate,
        stored=stored,
        dead_as_meant=dead_as_meant,
        dlq_by_kind=Counter(d.kind for d in outputs.dead_letters),
        unacknowledged=unacknowledged,
        problems={c: tuple(problems.get(c, ())) for c in CATEGORIES},
    )


def render(verdict: Verdict) -> str:
    """The oracle's table, for terminals."""

    def row(label: str, value: int, indent: int = 0) -> str:
        return f"{' ' * indent}{label:<{44 - indent}} {value:>7}"

    lines = ["oracle (ledger vs bucket, event log, dead letters)"]
    lines.append(row("ledger media of accepted webhooks", sum(verdict.accepted_by_fate.values())))
    lines += [row(f"meant {fate}", n, 2) for fate, n in sorted(verdict.accepted_by_fate.items())]
    lines.append(row("stored once, right bytes, right key", verdict.stored))
    lines.append(row("dead-lettered with the kind meant", sum(verdict.dead_as_meant.values())))
    lines += [row(kind, n, 2) for kind, n in sorted(verdict.dead_as_meant.items())]
    lines.append(row("records on the dead-letter topic", sum(verdict.dlq_by_kind.values())))
    lines += [row(kind, n, 2) for kind, n in sorted(verdict.dlq_by_kind.items())]
    lines.append(row("media of unacknowledged webhooks", verdict.unacknowledged))
    lines += [row(category.replace("_", " "), verdict.count(category)) for category in CATEGORIES]
    for category in CATEGORIES:
        lines += [f"{category.upper()}: {line}" for line in verdict.problems[category][:20]]
    return "\n".join(lines)


# ------------------------------------------------------------------------ I/O


class AvroReader:
    """Decodes Avro single-object records with the ``.avsc`` files, via fastavro alone."""

    def __init__(self, directory: Path = SCHEMAS) -> None:
        """Load every schema of ``directory`` and index it by its CRC-64-AVRO fingerprint."""
        self._schemas: dict[bytes, tuple[str, Any]] = {}
        for path in sorted(directory.glob("*.avsc")):
            schema = fastavro.schema.load_schema(path)
            canonical = to_parsing_canonical_form(schema)
            digest = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
            self._schemas[digest] = (path.stem.rsplit(".", 1)[-1], schema)

    def decode(self, data: bytes | None) -> tuple[str, dict[str, Any]] | None:
        """(record type name, fields), or ``None`` when ``data`` is no record of these schemas."""
        if not data or data[:2] != MAGIC or data[2:10] not in self._schemas:
            return None
        name, schema = self._schemas[data[2:10]]
        try:
            return name, fastavro.schemaless_reader(io.BytesIO(data[10:]), schema)
        except (ValueError, EOFError, UnicodeDecodeError):
            return None


def read_topic(bootstrap: str, topic: str, timeout_s: float = 120.0) -> list[Any]:
    """Every committed record of ``topic`` (all partitions, from the start, up to the end)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"oracle-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = list(consumer.list_topics(topic, timeout=30).topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        remaining, out = set(partitions), []
        deadline = time.monotonic() + timeout_s
        while remaining:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: partitions {sorted(remaining)} not read to the end")
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    remaining.discard(message.partition())
                continue
            out.append(message)
        return out
    finally:
        consumer.close()


def read_events(
    reader: AvroReader, messages: Iterable[Any]
) -> tuple[list[Detected], list[StoredEvent], int]:
    """The detections and stores of the event log, and how many records did not decode."""
    detected: list[Detected] = []
    stored: list[StoredEvent] = []
    bad = 0
    for message in messages:
        decoded = reader.decode(message.value())
        if decoded is None:
            bad += 1
            continue
        name, fields = decoded
        if name == "MediaDetected":
            detected.append(Detected(fields["media_id"], _message_of(fields["info"])))
        elif name == "MediaStored":
            stored.append(StoredEvent(fields["media_id"], fields["key"], fields["sha256"]))
    return detected, stored, bad


def read_dead_letters(reader: AvroReader, messages: Iterable[Any]) -> list[DeadLetter]:
    """Each dead letter's kind, and the message its value (a webhook or a request) names."""
    out: list[DeadLetter] = []
    for message in messages:
        headers = {k: (v or b"").decode("utf-8", "replace") for k, v in message.headers() or []}
        decoded = reader.decode(message.value())
        named: Message | None = None
        if decoded is not None:
            name, fields = decoded
            if name == "WebhookReceived" and fields.get("message_id"):
                named = (fields["provider"], fields["instance_id"], fields["message_id"])
            elif "info" in fields:
                named = _message_of(fields["info"])
        out.append(DeadLetter(headers.get(KIND_HEADER, ""), named, headers.get(MEDIA_ID_HEADER)))
    return out


def _message_of(info: Mapping[str, Any]) -> Message:
    return (info["provider"], info["instance_id"], info["message_id"])


@dataclasses.dataclass(frozen=True, slots=True)
class S3Access:
    """Where the bucket is and the credentials to read it."""

    endpoint_url: str | None
    region: str
    bucket: str
    access_key: str = dataclasses.field(repr=False)
    secret_key: str = dataclasses.field(repr=False)


def read_bucket(s3: S3Access) -> tuple[dict[str, str], list[str]]:
    """(object key -> SHA-256 of its bytes as downloaded, multipart uploads still open)."""
    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        region_name=s3.region,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 10}),
    )
    objects: dict[str, str] = {}
    open_uploads: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket):
        for item in page.get("Contents", []):
            key = item["Key"]
            if MULTIPART_MARKER in key:
                open_uploads.append(key)
                continue
            digest = hashlib.sha256()
            for chunk in client.get_object(Bucket=s3.bucket, Key=key)["Body"].iter_chunks(1 << 20):
                digest.update(chunk)
            objects[key] = digest.hexdigest()
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=s3.bucket):
        open_uploads += [
            f"{u['Key']} (upload {u['UploadId'][:12]})" for u in page.get("Uploads", [])
        ]
    return objects, open_uploads


def read_outputs(bootstrap: str, media_events: str, dead_letters: str, s3: S3Access) -> Outputs:
    """Read the bucket, the event log and the dead-letter topic of one run."""
    reader = AvroReader()
    detected, stored, bad = read_events(reader, read_topic(bootstrap, media_events))
    letters = read_dead_letters(reader, read_topic(bootstrap, dead_letters))
    objects, open_uploads = read_bucket(s3)
    return Outputs(objects, tuple(open_uploads), detected, stored, letters, bad)


__all__ = [
    "CATEGORIES",
    "STORE",
    "AvroReader",
    "LedgerMedia",
    "DeadLetter",
    "Detected",
    "Outputs",
    "S3Access",
    "StoredEvent",
    "Verdict",
    "audit",
    "read_bucket",
    "read_dead_letters",
    "read_events",
    "read_ledger",
    "read_outputs",
    "read_topic",
    "render",
]
