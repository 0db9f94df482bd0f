"""The detector stage: webhooks in, download requests and media events out, exactly once.

:data:`STAGE` is what ``mediaflow run detector [--idle-exit S]`` runs (through
:func:`~mediaflow.kafka.stage_runner.run_stage`, which names the clients,
handles signals and fatal errors). The shared :class:`~mediaflow.kafka.Worker`
does the Kafka work (read_committed input, outputs and input offsets in one
transaction per batch, dead letters for poison records); this module supplies
the transform (:class:`DetectorStage`) and wires its collaborators.

Running several copies: give each copy its own ``MEDIAFLOW_INSTANCE_NAME``.
The name makes the copy's ``transactional.id`` and its static consumer-group
membership: a restarted copy with the same name fences its zombie predecessor
and takes its partitions back at once; two live copies with the same name
fence each other. Copies with different names split the partitions of the
webhooks topic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from prometheus_client import Counter

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.events import Stage, utcnow
from mediaflow.kafka.records import InRecord, OutRecord
from mediaflow.kafka.retry import Decision, RetryPolicy
from mediaflow.kafka.routing import FailureRouter
from mediaflow.kafka.stage_runner import StageClients, StageSpec
from mediaflow.kafka.topics import load_layout, record_limit
from mediaflow.kafka.worker import Worker, WorkerOptions
from mediaflow.logging import get_logger, record_context
from mediaflow.metrics import DEAD_LETTERS, MEDIA_DETECTED
from mediaflow.processors.detector.transform import Detection, OutputTopics, detect, read_webhook

log = get_logger("mediaflow.detector")

WEBHOOKS = Counter(
    "mediaflow_detector_webhooks_total",
    "Webhooks the detector read, by provider and category (media, text, status, other)",
    ["provider", "category"],
)


class DetectorStage:
    """The :class:`~mediaflow.kafka.handling.StageHandler` of the detector.

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


def build_worker(settings: Settings, clients: StageClients | None = None) -> Worker:
    """Wire a detector worker from settings.

    Args:
        settings: cluster, topics, batch limits and the instance name.
        clients: the group and clients to use; :data:`STAGE`'s by default
            (benchmarks pass their own group, or a non-transactional one).

    Raises:
        ConfigError: the topics file is missing or incomplete.

    """
    clients = clients or STAGE.clients(settings)
    layout = load_layout(settings.kafka)
    router = FailureRouter(
        stage=Stage.DETECTOR.value,
        group_id=clients.group_id,
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
        transactional=clients.transactional,
    )
    return Worker(
        consumer=clients.consumer(),
        producer=clients.producer(),
        stage=stage,
        topics=[layout.webhooks],
        # The detector has no retry tiers: everything that fails it is permanent.
        policy=RetryPolicy(),
        router=router,
        options=options,
    )


@asynccontextmanager
async def open_worker(settings: Settings, clients: StageClients) -> AsyncIterator[Worker]:
    """The detector's loop; it holds nothing that needs closing besides its own clients."""
    yield build_worker(settings, clients)


STAGE = StageSpec(name=Stage.DETECTOR.value, group="mediaflow-detector", open=open_worker)
"""The detector as ``mediaflow run detector`` runs it."""


__all__ = ["STAGE", "DetectorStage", "build_worker", "open_worker"]
