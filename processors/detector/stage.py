"""The detector role: webhooks in, download requests and media events out, exactly once.

``mediaflow run detector [--idle-exit S]`` runs :func:`main`. The shared
:class:`~mediaflow.kafka.Worker` does the Kafka work (read_committed input,
outputs and input offsets in one transaction per batch, dead letters for
poison records); this module supplies the transform (:class:`DetectorStage`)
and wires the clients.

Running several copies: give each copy its own ``MEDIAFLOW_INSTANCE_NAME``.
The name makes the copy's ``transactional.id`` and its static consumer-group
membership (``group.instance.id``): a restarted copy with the same name fences
its zombie predecessor and takes its partitions back at once, without waiting
for the session timeout; two live copies with the same name fence each other.
Copies with different names split the partitions of the webhooks topic.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable, Sequence
from datetime import datetime

from confluent_kafka import Producer
from prometheus_client import Counter

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.events import Stage, utcnow
from mediaflow.kafka import clients
from mediaflow.kafka.records import InRecord, OutRecord
from mediaflow.kafka.retry import Decision, RetryPolicy
from mediaflow.kafka.routing import FailureRouter
from mediaflow.kafka.topics import load_layout, record_limit
from mediaflow.kafka.worker import Worker, WorkerOptions
from mediaflow.logging import get_logger, record_context
from mediaflow.metrics import DEAD_LETTERS, MEDIA_DETECTED
from mediaflow.processors.detector.transform import Detection, OutputTopics, detect, read_webhook

log = get_logger("mediaflow.detector")

GROUP = "mediaflow-detector"
"""Consumer group of every detector copy (behind the topic prefix, like the topics)."""

WEBHOOKS = Counter(
    "mediaflow_detector_webhooks_total",
    "Webhooks the detector read, by provider and category (media, text, status, other)",
    ["provider", "category"],
)


def group_id(settings: Settings) -> str:
    """Return the consumer group; the topic prefix namespaces it like the topics."""
    return settings.kafka.topic(GROUP)


def transactional_id(settings: Settings) -> str:
    """Return the stable ``transactional.id`` of this copy (one per instance name)."""
    return settings.kafka.topic(f"{GROUP}-{settings.instance_name}")


class DetectorStage:
    """The :class:`~mediaflow.kafka.worker.StageHandler` of the detector.

    Args:
        codec: decodes envelopes, encodes events.
        topics: where media go.
        router: builds the dead-letter records of single bad media.
        max_media: the most media items one webhook may hold
            (``MEDIAFLOW_MAX_MEDIA_PER_WEBHOOK``).
        clock: ``occurred_at`` of the events.

    """

    name = Stage.DETECTOR.value

    def __init__(
        self,
        *,
        codec: AvroCodec,
        topics: OutputTopics,
        router: FailureRouter,
        max_media: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._codec = codec
        self._topics = topics
        self._router = router
        self._clock = clock
        self._max_media = max_media

    async def handle(self, record: InRecord) -> Sequence[OutRecord]:
        """Detect the media of one envelope.

        Raises:
            UndecodableRecord: the value is not a WebhookReceived (the worker dead-letters it).
            InvalidPayload: the body is not JSON or the envelope is unusable (same).

        """
        webhook = read_webhook(record, self._codec)
        with record_context(
            event_id=webhook.event_id, client_id=webhook.client_id, instance_id=webhook.instance_id
        ):
            detection = detect(
                record,
                webhook,
                codec=self._codec,
                topics=self._topics,
                router=self._router,
                now=self._clock(),
                max_media=self._max_media,
            )
            _count(webhook.provider, detection)
        return detection.outputs

    def media_id_of(self, record: InRecord) -> str | None:
        """Return ``None``: a whole-record failure concerns a webhook, not one media."""
        return None

    def failure_records(
        self, record: InRecord, decision: Decision, now: datetime
    ) -> Sequence[OutRecord]:
        """Return nothing: no media is known for a whole-record failure."""
        return ()


def _count(provider: str, detection: Detection) -> None:
    WEBHOOKS.labels(provider, detection.category.value).inc()
    for media_type in detection.media_types:
        MEDIA_DETECTED.labels(media_type.value).inc()
    for kind in detection.problems:
        DEAD_LETTERS.labels(Stage.DETECTOR.value, kind.value).inc()
        log.warning("media_dead_lettered", error_kind=kind.value)


def build_worker(
    settings: Settings,
    *,
    group: str | None = None,
    transactional: bool = True,
    producer: Producer | None = None,
) -> Worker:
    """Wire a detector worker from settings.

    Args:
        settings: cluster, topics, batch limits and the instance name.
        group: consumer group; :func:`group_id` by default (benchmarks pass their own).
        transactional: exactly-once commits; ``False`` only for benchmarks.
        producer: the producer to use; by default a transactional one with
            :func:`transactional_id` (or a plain one when not transactional).

    Raises:
        ConfigError: the topics file is missing or incomplete.

    """
    layout = load_layout(settings.kafka)
    group = group or group_id(settings)
    consumer = clients.consumer(
        settings.kafka,
        group,
        # Static membership: a restarted copy gets its partitions back immediately
        # instead of after the session timeout of its killed predecessor.
        **{"group.instance.id": f"{group}-{settings.instance_name}"},
    )
    if producer is None:
        producer = (
            clients.transactional_producer(settings.kafka, transactional_id(settings))
            if transactional
            else clients.producer(settings.kafka)
        )
    router = FailureRouter(
        stage=Stage.DETECTOR.value,
        group_id=group,
        dlq_topic=layout.dead_letters,
        max_record_bytes=record_limit(settings.kafka, layout.by_role("dead_letters")),
    )
    stage = DetectorStage(
        codec=AvroCodec(),
        topics=OutputTopics(layout.download_requests, layout.media_events),
        router=router,
        max_media=settings.max_media_per_webhook,
    )
    options = WorkerOptions(
        concurrency=settings.batch_max_records,
        batch_max_records=settings.batch_max_records,
        batch_max_interval_s=settings.batch_max_interval_s,
        max_queued_per_partition=max(settings.batch_max_records, 100),
        transactional=transactional,
    )
    return Worker(
        consumer=consumer,
        producer=producer,
        stage=stage,
        topics=[layout.webhooks],
        # The detector has no retry tiers: everything that fails it is permanent.
        policy=RetryPolicy(),
        router=router,
        options=options,
    )


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Run the detector until SIGTERM/SIGINT, or until idle with ``--idle-exit``.

    Returns:
        0 after a clean stop; 1 after a fatal Kafka error (e.g. this copy was
        fenced by a newer one with the same instance name).

    """
    worker = build_worker(settings)
    try:
        asyncio.run(_run(worker, getattr(args, "idle_exit", None)))
    except clients.FatalKafkaError as exc:
        log.error(
            "detector_stopped_fatal",
            reason=exc.message,
            transactional_id=transactional_id(settings),
            hint="another copy with the same MEDIAFLOW_INSTANCE_NAME took over; "
            "give each copy a unique MEDIAFLOW_INSTANCE_NAME",
        )
        return 1
    return 0


async def _run(worker: Worker, idle_exit_s: float | None) -> None:
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, worker.stop)
    try:
        await worker.run(idle_exit_s=idle_exit_s)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


__all__ = ["GROUP", "DetectorStage", "build_worker", "group_id", "main", "transactional_id"]
