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
import itertools
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Producer

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.errors import UndecodableRecord
from mediaflow.events import MediaDownloadRequested
from mediaflow.kafka import headers as h
from mediaflow.kafka.clients import transactional_producer
from mediaflow.kafka.publish import TransactionalPublisher
from mediaflow.kafka.records import OutRecord
from mediaflow.kafka.scan import scan
from mediaflow.kafka.topics import TopicLayout


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


def reemit(
    settings: Settings,
    layout: TopicLayout,
    requests: Iterable[OriginalRequest],
    *,
    batch_size: int = 500,
    producer: Producer | None = None,
) -> int:
    """Publish the requests again on the download-request topic; return how many.

    Each batch is one Kafka transaction: a failure aborts it, and a run that
    stops half-way has published whole batches only.

    Args:
        settings: where the cluster is.
        layout: the topic names.
        requests: from :func:`find_requests`.
        batch_size: requests per transaction.
        producer: a transactional producer; a fresh one (own transactional id) when omitted.

    Raises:
        MediaflowError: Kafka refused or timed out (see :mod:`mediaflow.kafka.publish`);
            the failed batch was aborted.
    """
    publisher = TransactionalPublisher(
        producer
        or transactional_producer(settings.kafka, f"mediaflow-ops-reprocess-{uuid.uuid4()}")
    )
    publisher.init_transactions(30)
    count = 0
    pending = iter(requests)
    while batch := list(itertools.islice(pending, batch_size)):
        count += publisher.publish(
            OutRecord(
                layout.download_requests,
                request.value,
                request.key,
                h.without(request.headers, h.RETRY_HEADERS) + h.encode({h.ATTEMPT: 1}),
            )
            for request in batch
        )
    return count


__all__ = ["OriginalRequest", "find_requests", "reemit", "select_media"]
