"""Records of the media event log, written the same way by every stage.

A consumer of ``media.events`` reads from the headers alone, whichever stage
wrote the event (detector, downloader, operator commands); download requests
carry the same headers:

* ``mediaflow.event-id``: the event's id (deduplicate without decoding);
* ``mediaflow.schema-fingerprint``: the writer schema, in hex (route or
  skip by type without decoding);
* ``traceparent``: the W3C trace context, when the event carries one;
* ``mediaflow.error-kind`` and ``mediaflow.error``: for a failure event
  (``MediaDownloadFailed``, ``MediaDeadLettered``), why, with secrets and URL
  query strings scrubbed.

The record is keyed by the media id, so a media's events stay in order on
one partition.
"""

from __future__ import annotations

from collections.abc import Mapping

from mediaflow.codec import AvroCodec
from mediaflow.events import MediaDownloadRequested, MediaEvent
from mediaflow.kafka import headers as h
from mediaflow.kafka.records import OutRecord
from mediaflow.kafka.routing import MAX_ERROR_MESSAGE
from mediaflow.logging import scrub
from mediaflow.text import to_utf8

Event = MediaEvent | MediaDownloadRequested
"""What is written with these headers: media events and download requests."""


def event_headers(
    event: Event, fingerprint: bytes, extra: Mapping[str, str | int | None] | None = None
) -> h.Headers:
    """The headers of one media event (see the module docstring).

    Args:
        event: the event.
        fingerprint: its writer schema's fingerprint (``AvroCodec.fingerprint_of``).
        extra: more headers a stage adds (an operator's redrive id).

    """
    error_kind = getattr(event, "error_kind", None)
    error = getattr(event, "error_message", None)
    return h.encode(
        {
            h.EVENT_ID: event.event_id,
            h.SCHEMA_FINGERPRINT: fingerprint.hex(),
            h.TRACEPARENT: event.traceparent,
            h.ERROR_KIND: error_kind,
            h.ERROR: scrub(error)[:MAX_ERROR_MESSAGE] if error is not None else None,
            **(extra or {}),
        }
    )


def event_record(
    topic: str,
    event: Event,
    codec: AvroCodec,
    *,
    extra: Mapping[str, str | int | None] | None = None,
) -> OutRecord:
    """The record that puts ``event`` on ``topic``, keyed by its media id.

    Args:
        topic: the media event log (or the download-request topic).
        event: any media event, or a download request.
        codec: encodes the value; names the schema fingerprint.
        extra: more headers (see :func:`event_headers`).

    """
    value = codec.encode(event)
    headers = event_headers(event, codec.fingerprint_of(type(event)), extra)
    return OutRecord(topic, value, to_utf8(event.media_id), headers)


__all__ = ["Event", "event_headers", "event_record"]
