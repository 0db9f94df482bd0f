"""``mediaflow reprocess``: ask the downloader again for media chosen from the projection.

The projection knows *which* media (client, instance, status, type, time) but
not *how* to fetch them: the media key and URL travel only in the original
``MediaDownloadRequested``, and the projection stores no source offsets. So
reprocess reads the download-request topic (keyed by media id, one read of
the retained log) and re-publishes, for every selected media, the newest
original request byte for byte, with retry headers reset (attempt 1, no due
time). Consumer offsets are not touched. A media whose request has left the
topic's retention cannot be reprocessed this way and is reported as such.

The downloader is idempotent: a media whose object is in the bucket is
answered with ``MediaStored`` (fetch path ``existing``) without a download.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.errors import MediaflowError, UndecodableRecord
from mediaflow.events import MediaDownloadRequested
from mediaflow.kafka import headers as h
from mediaflow.kafka.clients import producer as build_producer
from mediaflow.kafka.clients import translate
from mediaflow.kafka.topics import TopicLayout
from mediaflow.ops._scan import scan


@dataclass(frozen=True, slots=True)
class OriginalRequest:
    """The newest download request of one media, as it was on the topic."""

    media_id: str
    key: bytes | None
    value: bytes
    headers: h.Headers


def select_media(store: Any, query: Any, *, limit: int | None = None) -> Iterator[Any]:
    """Every projection row matching ``query`` (a ``MediaQuery``), page after page."""
    seen = 0
    while True:
        page = store.list(query)
        for row in page.rows:
            yield row
            seen += 1
            if limit is not None and seen >= limit:
                return
        if page.next_after is None:
            return
        query = dataclasses.replace(query, after=page.next_after)


def find_requests(
    settings: Settings,
    layout: TopicLayout,
    codec: AvroCodec,
    media_ids: Iterable[str],
    *,
    progress: Any = None,
) -> dict[str, OriginalRequest]:
    """The newest request on the download-request topic for each of ``media_ids``.

    Raises:
        ConfigError: the topic does not exist.
        BrokerUnavailable: the broker did not answer.
    """
    wanted = set(media_ids)
    found: dict[str, tuple[int, OriginalRequest]] = {}
    if not wanted:
        return {}
    on_total = (lambda n: setattr(progress, "total", n)) if progress else None
    for message in scan(settings.kafka, layout.download_requests, on_total=on_total):
        if progress:
            progress.advance()
        key = (message.key() or b"").decode("utf-8", "replace")
        if key not in wanted:
            continue
        try:
            request = codec.decode(message.value(), MediaDownloadRequested)
        except UndecodableRecord:
            continue
        stamp = message.timestamp()[1]
        if request.media_id in wanted and stamp >= found.get(request.media_id, (-1, None))[0]:
            headers = [(k, v or b"") for k, v in (message.headers() or [])]
            found[request.media_id] = (
                stamp,
                OriginalRequest(request.media_id, message.key(), message.value() or b"", headers),
            )
    if progress:
        progress.close()
    return {media_id: request for media_id, (_, request) in found.items()}


def reemit(settings: Settings, layout: TopicLayout, requests: Iterable[OriginalRequest]) -> int:
    """Publish the requests again on the download-request topic; return how many.

    Raises:
        BrokerUnavailable: Kafka did not acknowledge every record.
    """
    producer = build_producer(settings.kafka)
    errors: list[str] = []
    count = 0
    try:
        for request in requests:
            headers = h.without(request.headers, h.RETRY_HEADERS) + h.encode({h.ATTEMPT: 1})
            producer.produce(
                layout.download_requests,
                request.value,
                request.key,
                headers=headers,
                on_delivery=lambda err, _m: errors.append(err.str()) if err else None,
            )
            producer.poll(0)
            count += 1
    except (KafkaException, BufferError) as exc:
        raise translate(exc) from exc
    if producer.flush(30) or errors:
        raise MediaflowError(f"reprocess: {len(errors) or 'some'} request(s) not acknowledged")
    return count


__all__ = ["OriginalRequest", "find_requests", "reemit", "select_media"]
