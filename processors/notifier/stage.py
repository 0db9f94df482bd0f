"""The notifier stage: tell the platform, by a signed callback, that a media is stored or lost.

For each record of ``media.events`` (and of the notifier's own retry tiers):

1. decode it; an event that is not terminal (``MediaStored``,
   ``MediaDeadLettered``) or does not describe its media is done at once;
2. find the callback of the media's instance, else of its client; a media
   whose client declared none is done at once;
3. POST the signed notification (:mod:`.delivery`); a failure is raised and
   routed by the worker's retry policy through the notifier's retry tiers,
   then to the dead-letter topic with its reason.

The worker commits a record's offset only once this returned, that is once
the endpoint answered 2xx (or the record went to a retry tier or the dead
letters in the same transaction), so a crash redelivers and the receiver
deduplicates on ``webhook-id``. The stage writes no event of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.errors import MediaflowError
from mediaflow.events import MediaInfo, MediaStored, utcnow
from mediaflow.kafka.records import InRecord, OutRecord
from mediaflow.kafka.retry import Decision, RetryPolicy
from mediaflow.kafka.routing import FailureRouter
from mediaflow.kafka.stage_runner import StageClients, StageSpec
from mediaflow.kafka.topics import load_layout
from mediaflow.kafka.worker import Worker, WorkerOptions
from mediaflow.logging import get_logger, record_context, register_secrets
from mediaflow.processors.notifier.callbacks import Callbacks
from mediaflow.processors.notifier.delivery import Sender, guarded_sessions
from mediaflow.processors.notifier.payload import TYPES, Link, notification
from mediaflow.storage.objects import download_url
from mediaflow.storage.s3 import s3_client
from mediaflow.stored_content import attachment, content_type

log = get_logger("mediaflow.notifier")

NAME = "notifier"

NOTIFICATIONS = Counter(
    "mediaflow_notifications_total",
    "Records of media.events the notifier finished, by outcome "
    "(delivered, not_terminal, no_callback)",
    ["outcome", "type"],
)


class NotifierStage:
    """The notifier's :class:`~mediaflow.kafka.handling.StageHandler`.

    Args:
        codec: decodes media events.
        callbacks: where each client or instance wants its notifications.
        sender: posts them.
        link: presigns the object of a stored media.
    """

    name = NAME

    def __init__(
        self, *, codec: AvroCodec, callbacks: Callbacks, sender: Sender, link: Link
    ) -> None:
        self._codec = codec
        self._callbacks = callbacks
        self._sender = sender
        self._link = link

    async def handle(self, record: InRecord) -> Sequence[OutRecord]:
        """Deliver the notification of a terminal event; produce nothing.

        Raises:
            UndecodableRecord: the value is not a media event.
            MediaflowError: the delivery failed (routed by the worker).
        """
        event = self._codec.decode(record.value)
        kind = TYPES.get(type(event))
        info: MediaInfo | None = getattr(event, "info", None)
        if kind is None or info is None:
            NOTIFICATIONS.labels("not_terminal", "").inc()
            return []
        # Looked up before the notification is built: presigning its link costs more
        # than the rest of it, and most media may belong to clients without a callback.
        callback = self._callbacks.for_media(info.client_id, info.instance_id)
        if callback is None:
            NOTIFICATIONS.labels("no_callback", kind).inc()
            return []
        note = notification(event, self._link)
        assert note is not None  # a terminal event that describes its media
        with record_context(
            media_id=note.media_id, client_id=note.client_id, instance_id=note.instance_id
        ):
            status = await self._sender.post(callback, note)
            NOTIFICATIONS.labels("delivered", note.type).inc()
            log.info(
                "notification_delivered",
                type=note.type,
                webhook_id=note.webhook_id,
                host=callback.host,
                status=status,
                attempt=record.attempt,
            )
        return []

    def media_id_of(self, record: InRecord) -> str | None:
        """The media id of an event, or ``None`` when it does not decode."""
        try:
            event = self._codec.decode(record.value)
        except MediaflowError:
            return None
        return getattr(event, "media_id", None)

    def failure_records(
        self, _record: InRecord, _decision: Decision, _now: datetime
    ) -> Sequence[OutRecord]:
        """Nothing: a failed notification changes nothing about the media itself."""
        return []


def presigner(s3: Any, ttl_s: int, clock: Callable[[], datetime] = utcnow) -> Link:
    """A :data:`~.payload.Link` that presigns objects as the API's download route does."""

    def link(event: MediaStored, info: MediaInfo) -> tuple[str, datetime]:
        url = download_url(
            s3,
            event.bucket,
            event.key,
            content_type=content_type(info.media_type, info.mimetype),
            disposition=attachment(
                info.media_type, info.mimetype, info.file_name, fallback=event.media_id
            ),
            ttl_s=ttl_s,
        )
        return url, clock() + timedelta(seconds=ttl_s)

    return link


# -- wiring ---------------------------------------------------------------------------------


@asynccontextmanager
async def open_worker(settings: Settings, clients: StageClients) -> AsyncIterator[Worker]:
    """Build the notifier's collaborators and its worker; close the HTTP sessions after.

    Shutdown order (after ``worker.stop()``): the worker stops fetching, lets
    deliveries in flight finish (bounded), commits them, cancels the rest
    (their records are read again by the next copy), leaves the group; then
    the HTTP sessions close.

    Raises:
        ConfigError: the tenant registry (a callback) or the topics file is invalid.
    """
    layout = load_layout(settings.kafka)
    callbacks = Callbacks.load(
        settings.tenants_file, allow_private=settings.downloader.allow_private_addresses
    )
    register_secrets(callbacks.secrets())
    retries = RetryPolicy(tiers=layout.notify_retry_tiers)
    async with AsyncExitStack() as sessions:
        strict, private = guarded_sessions(settings.downloader.allow_private_addresses)
        for session in (strict, private):
            await sessions.enter_async_context(session)
        stage = NotifierStage(
            codec=AvroCodec(),
            callbacks=callbacks,
            sender=Sender(strict, private, timeout_s=settings.callback_timeout_s),
            link=presigner(s3_client(settings.s3), settings.s3.presign_ttl_s),
        )
        yield Worker(
            consumer=clients.consumer(),
            producer=clients.producer(),
            stage=stage,
            topics=[layout.media_events, *(t.topic for t in retries.tiers)],
            policy=retries,
            router=FailureRouter(stage.name, clients.group_id, layout.dead_letters),
            options=WorkerOptions(
                concurrency=settings.notifier_concurrency,
                batch_max_records=settings.batch_max_records,
                batch_max_interval_s=settings.batch_max_interval_s,
            ),
        )


STAGE = StageSpec(name=NAME, group="mediaflow-notifier", open=open_worker)
"""The notifier as ``mediaflow run notifier`` runs it."""


__all__ = ["NAME", "NOTIFICATIONS", "STAGE", "NotifierStage", "open_worker", "presigner"]
