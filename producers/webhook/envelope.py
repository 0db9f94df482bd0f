"""Build the Kafka record for one accepted webhook: value, key and headers.

The value is a :class:`~mediaflow.events.WebhookReceived` (the raw body kept
byte for byte); the key is ``<instance id>|<chat id>`` so that every message
of one chat lands on one partition, in order; the headers carry the event id,
the schema fingerprint and the W3C ``traceparent`` that follows the webhook
through every stage.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from mediaflow.events import Provider, WebhookReceived, new_event_id
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


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """What the producer sends: the event plus its Kafka key and headers."""

    event: WebhookReceived
    key: bytes
    headers: kh.Headers


def traceparent(incoming: str | None) -> str:
    """Keep a valid W3C ``traceparent``; otherwise start a new sampled trace.

    Args:
        incoming: the request's ``traceparent`` header, if any.

    """
    if incoming:
        match = _TRACEPARENT.match(incoming.strip())
        if match and set(match[1]) != {"0"} and set(match[2]) != {"0"}:
            return match[0]
    ids = secrets.token_hex(24)  # a trace id (16 bytes) and a span id (8)
    return f"00-{ids[:32]}-{ids[32:]}-01"


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
    trace = traceparent(kept.get("traceparent"))
    kept["traceparent"] = trace
    event = WebhookReceived(
        event_id=new_event_id(),
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
    "build_record",
    "record_key",
    "select_headers",
    "traceparent",
]
