"""Build the Kafka record for one accepted webhook: value, key and headers.

The value is a :class:`~mediaflow.events.WebhookReceived` (the raw body kept
byte for byte); the key is ``<instance id>|<chat id>`` so that every message
of one chat lands on one partition, in order; the headers carry the event id,
the schema fingerprint and the W3C ``traceparent`` that follows the webhook
through every stage.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from mediaflow.events import Provider, WebhookReceived
from mediaflow.kafka import headers as kh
from mediaflow.providers import EnvelopeFields
from mediaflow.tenants import Tenant

KEPT_HEADERS = frozenset(
    {
        "user-agent",
        "content-type",
        "content-length",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-real-ip",
        "x-request-id",
        "traceparent",
        "tracestate",
    }
)
"""Request headers copied into the envelope. Credentials are never in this list."""

MAX_HEADER_VALUE = 512
"""Longer header values are cut: the envelope is not a place for unbounded data."""

_SURROGATES = re.compile("[\ud800-\udfff]")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class RandomPool:
    """``os.urandom``, read a page at a time and handed out in slices.

    Every webhook needs 40 random bytes (its event id and a new trace's ids).
    One ``getrandom`` call each showed as 5% of the receiver's event loop under
    load; one per page is a hundredth of that. The bytes are the kernel's all
    the same. A forked child forgets the page it inherited, so no two processes
    (``--workers``) hand out the same bytes.
    """

    PAGE_BYTES = 4096

    def __init__(self) -> None:
        self._page = b""
        self._used = 0
        os.register_at_fork(after_in_child=self.forget)

    def take(self, count: int) -> bytes:
        """Return ``count`` random bytes never handed out before."""
        if self._used + count > len(self._page):
            self._page, self._used = os.urandom(max(self.PAGE_BYTES, count)), 0
        start, self._used = self._used, self._used + count
        return self._page[start : self._used]

    def forget(self) -> None:
        """Drop the unused rest of the page (after a fork: the parent hands it out)."""
        self._page, self._used = b"", 0


_RANDOM = RandomPool()


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """What the producer sends: the event plus its Kafka key and headers."""

    event: WebhookReceived
    key: bytes
    headers: kh.Headers


def traceparent(incoming: str | None, entropy: bytes | None = None) -> str:
    """Keep a valid W3C ``traceparent``; otherwise start a new sampled trace.

    Args:
        incoming: the request's ``traceparent`` header, if any.
        entropy: 24 random bytes for the new trace and span ids (read here if not given).

    """
    if incoming:
        match = _TRACEPARENT.match(incoming.strip())
        if match and set(match[1]) != {"0"} and set(match[2]) != {"0"}:
            return match[0]
    entropy = entropy or _RANDOM.take(24)
    return f"00-{entropy[:16].hex()}-{entropy[16:24].hex()}-01"


def select_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Return the allow-listed request headers, lower-cased, values bounded and UTF-8.

    Args:
        headers: the request's headers as ``(name, value)`` pairs.

    """
    return {
        name.lower(): _utf8(value[:MAX_HEADER_VALUE])
        for name, value in headers
        if name.lower() in KEPT_HEADERS
    }


def _utf8(value: str) -> str:
    # aiohttp hands header bytes that are not UTF-8 over as lone surrogates
    # (surrogateescape), which neither Avro nor Kafka can encode: U+FFFD each.
    if value.isascii():
        return value
    return _SURROGATES.sub("\ufffd", value)


def uuid4_from(random16: bytes) -> str:
    """Format 16 random bytes as a version-4 UUID string.

    What ``str(uuid.UUID(bytes=..., version=4))`` returns, at a third of its
    cost: it runs once per webhook.
    """
    raw = bytearray(random16)
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def record_key(fields: EnvelopeFields) -> bytes:
    """``<instance id>|<chat id>`` (chat empty when the event has none)."""
    return f"{fields.instance_id}|{fields.chat_id or ''}".encode()


def build_record(
    *,
    provider: Provider,
    tenant: Tenant,
    fields: EnvelopeFields,
    body: bytes,
    request_headers: Iterable[tuple[str, str]],
    received_at: datetime,
    fingerprint: bytes,
) -> OutgoingRecord:
    """Assemble the envelope, its key and its Kafka headers.

    Args:
        provider: the endpoint the webhook came to.
        tenant: the authenticated tenant (source of the client id).
        fields: the routing fields read from the body.
        body: the raw request body, kept unchanged.
        request_headers: the request's headers; only :data:`KEPT_HEADERS` are kept.
        received_at: when the request arrived (aware datetime).
        fingerprint: the WebhookReceived schema fingerprint, for the header.

    """
    kept = select_headers(request_headers)
    entropy = _RANDOM.take(40)  # the event id and a new trace's ids
    trace = traceparent(kept.get("traceparent"), entropy[16:])
    kept["traceparent"] = trace
    event = WebhookReceived(
        event_id=uuid4_from(entropy[:16]),
        provider=provider.value,
        client_id=tenant.client_id,
        instance_id=fields.instance_id,
        message_id=fields.message_id,
        chat_id=fields.chat_id,
        event_type=fields.event_type,
        received_at=received_at,
        headers=kept,
        body=body,
    )
    headers = kh.encode(
        {
            kh.EVENT_ID: event.event_id,
            kh.SCHEMA_FINGERPRINT: fingerprint.hex(),
            kh.TRACEPARENT: trace,
        }
    )
    return OutgoingRecord(event=event, key=record_key(fields), headers=headers)


__all__ = [
    "KEPT_HEADERS",
    "MAX_HEADER_VALUE",
    "OutgoingRecord",
    "RandomPool",
    "build_record",
    "record_key",
    "select_headers",
    "traceparent",
    "uuid4_from",
]
