"""What a stage receives from the worker loop and what it hands back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import Message

from mediaflow.kafka import headers as h


@dataclass(frozen=True, slots=True)
class InRecord:
    """One consumed Kafka record, with the retry bookkeeping read from its headers."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: h.Headers
    timestamp: datetime | None
    attempt: int = 1
    first_failure_at: datetime | None = None
    due_at: datetime | None = None

    @classmethod
    def from_message(cls, message: Message) -> InRecord:
        """Build from a confluent-kafka message (never an error message)."""
        raw_headers = [(k, v or b"") for k, v in (message.headers() or [])]
        text = h.to_dict(raw_headers)
        kind, ts = message.timestamp()
        try:
            attempt = max(1, int(text.get(h.ATTEMPT, "1")))
        except ValueError:
            attempt = 1
        return cls(
            topic=message.topic() or "",
            partition=message.partition() or 0,
            offset=message.offset() or 0,
            key=message.key(),
            value=message.value(),
            headers=raw_headers,
            timestamp=datetime.fromtimestamp(ts / 1000, UTC) if kind and ts > 0 else None,
            attempt=attempt,
            first_failure_at=h.from_millis(text.get(h.FIRST_FAILURE_AT)),
            due_at=h.from_millis(text.get(h.DUE_AT)),
        )

    def header(self, name: str) -> str | None:
        """Return one header as text, or ``None``."""
        return h.to_dict(self.headers).get(name)


@dataclass(frozen=True, slots=True)
class OutRecord:
    """A record to produce inside the batch's transaction."""

    topic: str
    value: bytes | None
    key: bytes | str | None = None
    headers: h.Headers = field(default_factory=list)
    partition: int | None = None
    """``None``: the partitioner picks by key (a bounded replay keeps the original's)."""


__all__ = ["InRecord", "OutRecord"]
