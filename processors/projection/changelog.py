"""Publish the current state of each media to the log-compacted ``media.state`` topic.

Other systems read the topic as a table: key = media id, value = the JSON of
the media's projection row, in the same shape as ``GET /media/{media_id}``
(times in ISO 8601, bookkeeping columns left out). JSON rather than Avro
because the value *is* the projection row, which grows columns with the
migrations; a reader that wants a schema has the OpenAPI ``Media`` object.
Compaction keeps the latest record per key; nothing is ever deleted, so
there are no tombstones.

Delivery is at-least-once, which is what a compacted latest-state topic
needs: the rows are read back and published after the batch's database
transaction committed, and the producer is flushed before the next batch,
so a record may be published twice (a re-read after a rebalance, a retried
send) but a reader only ever keeps the newest per key. Two windows remain
and are accepted: a process that dies between the database commit and the
broker's acknowledgement loses that one update from the changelog until the
media next changes; and during a rebalance two projection copies may
publish the same media, so a reader that cares compares ``updated_at``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from confluent_kafka import KafkaError, Message, Producer
from prometheus_client import Counter

from mediaflow.errors import BrokerUnavailable
from mediaflow.logging import get_logger
from mediaflow.processors.projection.views import row_json
from mediaflow.storage.projection import LogRecord, ProjectionStore

log = get_logger("mediaflow.projection.changelog")

PUBLISHED = Counter(
    "mediaflow_projection_changelog_published_total",
    "Media states published to the media.state changelog",
)


class StateChangelog:
    """Publishes the rows a batch touched, after the batch is committed to the store.

    Args:
        producer: an idempotent ``acks=all`` producer (keeps per-key order on retries).
        store: where the rows are read back from.
        topic: the compacted media state topic.
        flush_timeout_s: longest wait for the broker to acknowledge a batch's states.

    """

    def __init__(
        self,
        *,
        producer: Producer,
        store: ProjectionStore,
        topic: str,
        flush_timeout_s: float = 30.0,
    ) -> None:
        self._producer = producer
        self._store = store
        self._topic = topic
        self._flush_timeout_s = flush_timeout_s
        self._failed: list[KafkaError] = []

    def publish(self, batch: Sequence[LogRecord]) -> int:
        """Publish the current row of every media ``batch`` touched; return how many.

        Call only after ``batch`` was applied and committed.

        Raises:
            BrokerUnavailable: the broker did not acknowledge every state in time
                (the caller stops; the next change of each media publishes it again).

        """
        media_ids = sorted({r.event.media_id for r in batch if r.event is not None})
        published = 0
        for media_id in media_ids:
            row = self._store.get(media_id)
            if row is None:
                continue
            self._producer.produce(
                self._topic,
                key=media_id.encode(),
                value=json.dumps(row_json(row), separators=(",", ":")).encode(),
                on_delivery=self._on_delivery,
            )
            published += 1
        if self._producer.flush(self._flush_timeout_s) > 0 or self._failed:
            reasons = sorted({e.name() for e in self._failed}) or ["timeout"]
            self._failed.clear()
            raise BrokerUnavailable(f"media states not acknowledged: {', '.join(reasons)}")
        PUBLISHED.inc(published)
        return published

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            log.warning("changelog_delivery_failed", code=error.name(), reason=error.str())
            self._failed.append(error)


__all__ = ["StateChangelog"]
