"""Dead letters: read, filter and summarise the dead-letter topic.

Every stage writes dead letters with the same ``dlq.*`` headers
(:mod:`mediaflow.kafka.routing`); this module reads them back decoded, for
``dlq list``, ``dlq show`` and ``dlq stats``. A value that does not decode is
shown as its length and a hex prefix: that is often why it is there. Sending
them back is :mod:`mediaflow.ops.redrive`; closing them is
:mod:`mediaflow.ops.dismiss`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Message

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.errors import UndecodableRecord
from mediaflow.kafka import headers as h
from mediaflow.kafka.scan import scan
from mediaflow.kafka.topics import TopicLayout

HEX_PREFIX_BYTES = 32
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""Sort key for a dead letter without any time (oldest of all)."""


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    """One dead letter as an operator sees it (``partition:offset`` identifies it)."""

    partition: int
    offset: int
    timestamp: datetime | None
    key: bytes | None = field(repr=False)
    value: bytes | None = field(repr=False)
    headers: h.Headers = field(repr=False)
    original_topic: str | None = None
    original_partition: int | None = None
    original_offset: int | None = None
    stage: str | None = None
    group: str | None = None
    error_kind: str | None = None
    error_message: str | None = None
    attempt: int | None = None
    first_failure_at: datetime | None = None
    failed_at: datetime | None = None
    media_id: str | None = None
    record_type: str | None = None
    client_id: str | None = None
    instance_id: str | None = None
    media_type: str | None = None
    decoded: dict[str, Any] | None = field(default=None, repr=False)
    decode_error: str | None = None
    redrive_id: str | None = None

    @property
    def id(self) -> str:
        """``partition:offset`` in the dead-letter topic."""
        return f"{self.partition}:{self.offset}"

    @property
    def value_omitted(self) -> bool:
        """The record was too large to copy: only its original on its topic has the value."""
        return self.value is None and h.DLQ_VALUE_OMITTED in h.to_dict(self.headers)

    @property
    def when(self) -> datetime | None:
        """When it was dead-lettered (header, else the record timestamp)."""
        return self.failed_at or self.timestamp

    @property
    def traceparent(self) -> str | None:
        """The trace context: the dead letter's header, else the one in the record it holds."""
        carried = (self.decoded or {}).get("traceparent")
        return h.to_dict(self.headers).get(h.TRACEPARENT) or carried or None

    @property
    def redriven_before(self) -> bool:
        """Loop marker: this record was redriven once already and failed again."""
        return self.redrive_id is not None

    def summary(self) -> dict[str, Any]:
        """The row shown by ``dlq list``."""
        return {
            "id": self.id,
            "failed_at": self.when,
            "stage": self.stage,
            "kind": self.error_kind,
            "client": self.client_id,
            "instance": self.instance_id,
            "type": self.media_type,
            "media_id": self.media_id,
            "attempt": self.attempt,
            "redriven": self.redriven_before,
            "message": self.error_message,
        }

    def detail(self) -> dict[str, Any]:
        """Everything ``dlq show`` prints; the raw value only as length and hex prefix."""
        return {
            **self.summary(),
            "original": f"{self.original_topic}[{self.original_partition}]@{self.original_offset}",
            "group": self.group,
            "first_failure_at": self.first_failure_at,
            "record_type": self.record_type,
            "key": (self.key or b"").decode("utf-8", "replace"),
            "value_bytes": len(self.value or b""),
            "value_hex_prefix": (self.value or b"")[:HEX_PREFIX_BYTES].hex(),
            "decode_error": self.decode_error,
            "redrive_id": self.redrive_id,
            "headers": {k: v for k, v in h.to_dict(self.headers).items() if not _secretish(k)},
            "value": self.decoded,
        }


def _secretish(name: str) -> bool:
    # Provider headers copied into WebhookReceived never carry secrets into dlq.*,
    # but a header named like a secret is not printed whatever it holds.
    return any(w in name.lower() for w in ("token", "secret", "authorization", "key"))


def decode_dead_letter(
    codec: AvroCodec,
    *,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]] | None,
) -> DeadLetterView:
    """Build the operator's view of one dead-letter record (pure, no I/O)."""
    raw = [(k, v or b"") for k, v in (headers or [])]
    text = h.to_dict(raw)
    decoded: dict[str, Any] | None = None
    record_type = decode_error = client = instance = media_type = media_id = None
    try:
        record = codec.decode(value)
        record_type = type(record).__name__
        decoded = _plain(record)
        info = getattr(record, "info", record)
        client = getattr(info, "client_id", None)
        instance = getattr(info, "instance_id", None)
        media_type = _text(getattr(info, "media_type", None))
        media_id = getattr(record, "media_id", None)
    except UndecodableRecord as exc:
        decode_error = exc.message
    return DeadLetterView(
        partition=partition,
        offset=offset,
        timestamp=h.from_millis(timestamp_ms) if timestamp_ms and timestamp_ms > 0 else None,
        key=key,
        value=value,
        headers=raw,
        original_topic=text.get(h.DLQ_ORIGINAL_TOPIC),
        original_partition=_int(text.get(h.DLQ_ORIGINAL_PARTITION)),
        original_offset=_int(text.get(h.DLQ_ORIGINAL_OFFSET)),
        stage=text.get(h.DLQ_STAGE),
        group=text.get(h.DLQ_CONSUMER_GROUP),
        error_kind=text.get(h.DLQ_ERROR_KIND),
        error_message=text.get(h.DLQ_ERROR_MESSAGE),
        attempt=_int(text.get(h.DLQ_ATTEMPT)),
        first_failure_at=h.from_millis(text.get(h.DLQ_FIRST_FAILURE_AT)),
        failed_at=h.from_millis(text.get(h.DLQ_FAILED_AT)),
        media_id=text.get(h.DLQ_MEDIA_ID) or media_id,
        record_type=record_type,
        client_id=client,
        instance_id=instance,
        media_type=media_type,
        decoded=decoded,
        decode_error=decode_error,
        redrive_id=text.get(h.REDRIVE_ID) or None,
    )


def _plain(record: Any) -> Any:
    """A decoded record as JSON-friendly data, without secrets or raw bodies."""
    if hasattr(record, "__dataclass_fields__"):
        out = {}
        for name in record.__dataclass_fields__:
            if name in ("media_key", "url"):
                out[name] = "****" if getattr(record, name) else None
            elif name == "body":
                out[name] = f"<{len(getattr(record, name) or b'')} bytes>"
            elif name == "headers":
                continue  # provider request headers may hold a webhook secret
            else:
                out[name] = _plain(getattr(record, name))
        return out
    return _text(record)


def _text(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool | datetime):
        return value
    return str(value.value if hasattr(value, "value") else value)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class DlqFilter:
    """Which dead letters a command works on; empty fields match everything."""

    ids: frozenset[str] = frozenset()
    client: str | None = None
    instance: str | None = None
    stage: str | None = None
    kind: str | None = None
    media_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    redriven: bool | None = None

    def matches(self, view: DeadLetterView) -> bool:
        """Whether ``view`` is selected."""
        if self.ids and view.id not in self.ids:
            return False
        pairs = (
            (self.client, view.client_id),
            (self.instance, view.instance_id),
            (self.stage, view.stage),
            (self.kind, view.error_kind),
            (self.media_type, view.media_type),
        )
        if any(wanted is not None and wanted != actual for wanted, actual in pairs):
            return False
        when = view.when
        if self.since and (when is None or when < self.since):
            return False
        if self.until and (when is None or when >= self.until):
            return False
        return self.redriven is None or self.redriven == view.redriven_before


def read_dead_letters(
    settings: Settings,
    layout: TopicLayout,
    codec: AvroCodec,
    *,
    progress: Any = None,
) -> list[DeadLetterView]:
    """Read and decode the whole dead-letter topic, oldest first per partition.

    Raises:
        ConfigError: the topic does not exist.
        BrokerUnavailable: the broker did not answer.
    """
    views = []
    on_total = (lambda n: setattr(progress, "total", n)) if progress else None
    for message in scan(settings.kafka, layout.dead_letters, on_total=on_total):
        views.append(view_of(codec, message))
        if progress:
            progress.advance()
    if progress:
        progress.close()
    return views


def view_of(codec: AvroCodec, message: Message) -> DeadLetterView:
    """Decode one consumed dead-letter message."""
    _kind, ts = message.timestamp()
    return decode_dead_letter(
        codec,
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        timestamp_ms=ts,
        key=message.key(),
        value=message.value(),
        headers=message.headers(),
    )


def stats(views: Iterable[DeadLetterView]) -> list[dict[str, Any]]:
    """Group by (error kind, stage): count, first and last seen, one example id and message."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for view in views:
        key = (view.error_kind or "?", view.stage or "?")
        group = groups.setdefault(
            key,
            {"kind": key[0], "stage": key[1], "count": 0, "redriven": 0}
            | {"first": None, "last": None},
        )
        group["count"] += 1
        group["redriven"] += int(view.redriven_before)
        when = view.when
        if when and (group["first"] is None or when < group["first"]):
            group["first"] = when
        if when and (group["last"] is None or when >= group["last"]):
            group["last"] = when
            group["example"] = view.id
            group["message"] = view.error_message
    return sorted(groups.values(), key=lambda g: (-g["count"], g["kind"], g["stage"]))


def parse_time(text: str) -> datetime:
    """Parse an ISO-8601 time (naive means UTC) or Unix epoch milliseconds.

    Raises:
        ValueError: neither form.
    """
    text = text.strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


__all__ = [
    "DeadLetterView",
    "DlqFilter",
    "EPOCH",
    "decode_dead_letter",
    "parse_time",
    "read_dead_letters",
    "stats",
    "view_of",
]
