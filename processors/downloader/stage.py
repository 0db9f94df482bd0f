"""The downloader stage: one download request in, one verified object in S3 out.

For each :class:`MediaDownloadRequested` (from the request topic or a retry tier):

1. if the bucket already holds an object for this media id (with the declared
   SHA-256 when there is one), emit ``MediaStored`` with fetch path
   ``existing`` and download nothing: a redelivered request never makes a
   second object;
2. otherwise try the fetch paths in order (tenant's, else the settings'); any
   failure of one path falls through to the next within the same attempt
   (W-API down, refusing, without a link, or serving bad bytes -> the CDN,
   when the media has a key); when every path failed,
   :func:`~.fallback.verdict` decides what the attempt raises (a transient
   failure of any path keeps the media in the retry tiers until the last);
3. stream the body through decrypt/verify into an upload; on any error the
   upload is aborted;
4. emit ``MediaStored`` on the media events topic; the worker commits it with
   the input offset in one transaction.

S3 being down, or refusing our credentials or bucket, is never the media's
fault: :meth:`DownloaderStage.handle` waits with capped exponential backoff
and runs the attempt again until the storage answers (or the worker stops and
cancels it), so it never reaches the retry tiers or the dead-letter topic.
Each wait is logged (``storage_unavailable_waiting``, at error level when an
operator must fix the settings or the bucket) and counted in
``mediaflow_storage_waits_total{cause}``. Every other failure is raised and routed
by the worker's RetryPolicy; :meth:`DownloaderStage.failure_records` adds the
matching ``MediaDownloadFailed`` / ``MediaDeadLettered`` event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from mediaflow.backoff import Backoff
from mediaflow.codec import AvroCodec
from mediaflow.config import DownloaderSettings, Settings
from mediaflow.errors import MediaflowError, StorageUnavailable
from mediaflow.events import (
    MediaDeadLettered,
    MediaDownloadFailed,
    MediaDownloadRequested,
    MediaStored,
    Stage,
    new_event_id,
    utcnow,
)
from mediaflow.kafka.eventlog import event_record
from mediaflow.kafka.handling import decision_kind
from mediaflow.kafka.records import InRecord, OutRecord
from mediaflow.kafka.retry import DeadLetter, Decision, RetryLater, RetryPolicy
from mediaflow.kafka.routing import FailureRouter
from mediaflow.kafka.stage_runner import StageClients, StageSpec
from mediaflow.kafka.topics import load_layout
from mediaflow.kafka.worker import Worker, WorkerOptions
from mediaflow.logging import get_logger, record_context, register_secrets, scrub
from mediaflow.metrics import DOWNLOAD_BYTES, DOWNLOAD_SECONDS, DOWNLOADS, STORAGE_WAITS
from mediaflow.processors.downloader import keys
from mediaflow.processors.downloader.client import guarded_session
from mediaflow.processors.downloader.fallback import PathFailure, verdict
from mediaflow.processors.downloader.fetchers import Fetcher, fetch_paths
from mediaflow.processors.downloader.streaming import refuse_declared_oversize, size_limit, transfer
from mediaflow.storage.objects import STAGING_PREFIX, MediaStore, StoredObject
from mediaflow.storage.s3 import s3_client
from mediaflow.tenants import Tenant, TenantRegistry
from mediaflow.url_guard import UrlPolicy
from mediaflow.whatsapp import MediaDecryptor, decode_b64_field

log = get_logger("mediaflow.downloader")


class DownloaderStage:
    """The downloader's :class:`~mediaflow.kafka.handling.StageHandler`.

    Args:
        codec: Avro codec for requests and events.
        fetcher: opens media bodies.
        store: the bucket.
        tenants: tokens and fetch orders per instance.
        settings: limits and the default fetch order.
        media_events_topic: where events go.
        backoff: how long to wait between storage tries.
        clock: wall clock (UTC).
        max_attempts: the attempts a request gets (the retry policy's); on the
            last one a permanent failure of a path is final even when another
            path failed transiently. ``None``: never the last.
    """

    name = Stage.DOWNLOADER.value

    def __init__(
        self,
        *,
        codec: AvroCodec,
        fetcher: Fetcher,
        store: MediaStore,
        tenants: TenantRegistry,
        settings: DownloaderSettings,
        media_events_topic: str,
        backoff: Backoff = Backoff(),
        clock: Callable[[], datetime] = utcnow,
        max_attempts: int | None = None,
    ) -> None:
        self._codec = codec
        self._fetcher = fetcher
        self._store = store
        self._tenants = tenants
        self._settings = settings
        self._topic = media_events_topic
        self._backoff = backoff
        self._clock = clock
        self._max_attempts = max_attempts

    # -- StageHandler -------------------------------------------------------------------

    async def handle(self, record: InRecord) -> Sequence[OutRecord]:
        """Store the requested media; return its ``MediaStored`` event.

        Raises:
            UndecodableRecord: the value is not a download request.
            MediaflowError: any failure but the storage's (routed by the worker).
        """
        request = self._codec.decode(record.value, MediaDownloadRequested)
        info = request.info
        with record_context(
            media_id=request.media_id, client_id=info.client_id, instance_id=info.instance_id
        ):
            started = time.monotonic()
            last = self._max_attempts is not None and record.attempt >= self._max_attempts
            stored, path = await self._until_storage_answers(request, last_attempt=last)
            seconds = time.monotonic() - started
            DOWNLOADS.labels(
                "stored" if path != "existing" else "existing",
                "",
                info.media_type.value,
                info.client_id,
                info.instance_id,
            ).inc()
            if path != "existing":
                DOWNLOAD_BYTES.labels(info.media_type.value).inc(stored.size)
            DOWNLOAD_SECONDS.labels(info.media_type.value, path).observe(seconds)
            log.info("media_stored", key=stored.key, size=stored.size, fetch_path=path)
            event = MediaStored(
                event_id=new_event_id(),
                media_id=request.media_id,
                occurred_at=self._clock(),
                stage=self.name,
                traceparent=request.traceparent,
                bucket=stored.bucket,
                key=stored.key,
                size=stored.size,
                sha256=stored.sha256,
                content_type=stored.content_type,
                fetch_path=path,
                duration_ms=int(seconds * 1000),
                attempt=record.attempt,
                info=info,
            )
            return [self._event(event)]

    def media_id_of(self, record: InRecord) -> str | None:
        """The media id of a request, or ``None`` when it does not decode."""
        request = self._decode_quietly(record)
        return request.media_id if request else None

    def failure_records(
        self, record: InRecord, decision: Decision, now: datetime
    ) -> Sequence[OutRecord]:
        """``MediaDownloadFailed`` for a retry, ``MediaDeadLettered`` for a dead letter."""
        request = self._decode_quietly(record)
        if request is None:
            return []
        info = request.info
        outcome = "dead_lettered" if isinstance(decision, DeadLetter) else "retry"
        kind = decision_kind(decision)
        DOWNLOADS.labels(
            outcome, kind, info.media_type.value, info.client_id, info.instance_id
        ).inc()
        common = {
            "event_id": new_event_id(),
            "media_id": request.media_id,
            "occurred_at": now,
            "stage": self.name,
            "traceparent": request.traceparent,
        }
        if isinstance(decision, RetryLater):
            failed = MediaDownloadFailed(
                **common,
                attempt=record.attempt,
                error_kind=decision.error.kind.value,
                error_message=scrub(decision.error.message)[:1000],
                retryable=True,
                next_due_at=decision.due_at,
            )
            return [self._event(failed)]
        dead = MediaDeadLettered(
            **common,
            error_kind=decision.kind.value,
            error_message=scrub(decision.message)[:1000],
            attempt=decision.attempt,
            info=info,
        )
        return [self._event(dead)]

    # -- one attempt --------------------------------------------------------------------

    async def _until_storage_answers(
        self, request: MediaDownloadRequested, *, last_attempt: bool
    ) -> tuple[StoredObject, str]:
        waits = 0
        while True:
            try:
                await self._store.sweep()
                return await self._attempt(request, last_attempt=last_attempt)
            except StorageUnavailable as exc:
                delay = self._backoff.delay(waits)
                waits += 1
                STORAGE_WAITS.labels(exc.cause.value).inc()
                report = log.error if exc.cause.misconfigured else log.warning
                report(
                    "storage_unavailable_waiting",
                    cause=exc.cause.value,
                    reason=exc.message,
                    delay_s=delay,
                    waits=waits,
                    hint="`mediaflow diagnose` checks the bucket and the credentials",
                )
                await asyncio.sleep(delay)

    async def _attempt(
        self, request: MediaDownloadRequested, *, last_attempt: bool
    ) -> tuple[StoredObject, str]:
        info = request.info
        refuse_declared_oversize(info.declared_length, self._settings.max_media_bytes)
        declared = _declared_sha256(request)
        prefix = keys.key_prefix(info, request.media_id)
        existing = await self._store.find_existing(
            prefix, request.media_id, declared.hex() if declared else None
        )
        if existing is not None:
            return existing, "existing"
        tenant = self._tenants.get(info.instance_id)
        failures: list[PathFailure] = []
        for path in fetch_paths(request, tenant, self._settings.fetch_order):
            try:
                return await self._fetch_and_store(path, request, tenant, declared), path
            except StorageUnavailable:
                raise  # no path's fault: the whole attempt waits for the storage
            except MediaflowError as exc:
                log.warning(
                    "fetch_path_failed",
                    fetch_path=path,
                    error_kind=exc.kind.value,
                    error=exc.message,
                )
                failures.append(PathFailure(path, exc))
        raise verdict(failures, last_attempt=last_attempt) from failures[-1].error

    async def _fetch_and_store(
        self,
        path: str,
        request: MediaDownloadRequested,
        tenant: Tenant | None,
        declared: bytes | None,
    ) -> StoredObject:
        info = request.info
        limit = size_limit(
            info.declared_length, self._settings.length_margin, self._settings.max_media_bytes
        )
        content_type = keys.content_type(info.media_type, info.mimetype)
        if declared is not None:
            upload_key = keys.object_key(info, request.media_id, declared.hex())
        else:
            upload_key = f"{STAGING_PREFIX}{keys.segment(request.media_id)}"
        async with self._fetcher.open(path, request, tenant) as source:
            decryptor = self._decryptor(request, limit) if source.encrypted else None
            upload = self._store.upload(
                upload_key,
                content_type,
                keys.object_metadata(
                    info,
                    media_id=request.media_id,
                    sha256_hex=declared.hex() if declared else None,
                    fetch_path=path,
                ),
                disposition=keys.content_disposition(info),
            )
            try:
                result = await transfer(
                    source.chunks,
                    upload,
                    limit=limit,
                    decryptor=decryptor,
                    expected_sha256=declared,
                    expected_length=info.declared_length,
                )
                metadata = keys.object_metadata(
                    info, media_id=request.media_id, sha256_hex=result.sha256, fetch_path=path
                )
                return await upload.complete(
                    keys.object_key(info, request.media_id, result.sha256), metadata
                )
            except BaseException:
                await upload.abort()
                raise

    def _decryptor(self, request: MediaDownloadRequested, limit: int) -> MediaDecryptor:
        source, info = request.source, request.info
        return MediaDecryptor(
            decode_b64_field(source.media_key or "", "mediaKey", 32),
            info.media_type,
            info.media_variant,
            file_enc_sha256=(
                decode_b64_field(source.file_enc_sha256, "fileEncSha256", 32)
                if source.file_enc_sha256
                else None
            ),
            file_sha256=_declared_sha256(request),
            file_length=info.declared_length,
            max_plaintext=limit,
        )

    # -- helpers ------------------------------------------------------------------------

    def _event(self, event: MediaStored | MediaDownloadFailed | MediaDeadLettered) -> OutRecord:
        return event_record(self._topic, event, self._codec)

    def _decode_quietly(self, record: InRecord) -> MediaDownloadRequested | None:
        try:
            return self._codec.decode(record.value, MediaDownloadRequested)
        except MediaflowError:
            return None


def _declared_sha256(request: MediaDownloadRequested) -> bytes | None:
    value = request.info.file_sha256
    return decode_b64_field(value, "fileSha256", 32) if value else None


# -- wiring ---------------------------------------------------------------------------------


@asynccontextmanager
async def open_worker(settings: Settings, clients: StageClients) -> AsyncIterator[Worker]:
    """Build the downloader's collaborators and its worker; close the HTTP session after.

    Shutdown order (after ``worker.stop()``): the worker stops fetching, lets
    in-flight downloads finish (bounded), commits them, cancels the rest
    (their uploads are aborted), leaves the group; then the HTTP session closes.

    Raises:
        ConfigError: tenants file or topics file invalid.
    """
    layout = load_layout(settings.kafka)
    tenants = TenantRegistry.load(settings.tenants_file)
    register_secrets(tenants.secrets())
    urls = UrlPolicy.from_settings(settings.downloader)
    retries = RetryPolicy(tiers=layout.retry_tiers)
    async with guarded_session(urls) as session:
        stage = DownloaderStage(
            codec=AvroCodec(),
            fetcher=Fetcher(session, urls, settings.downloader),
            store=MediaStore(s3_client(settings.s3), settings.s3),
            tenants=tenants,
            settings=settings.downloader,
            media_events_topic=layout.media_events,
            max_attempts=retries.max_attempts,
        )
        yield Worker(
            consumer=clients.consumer(),
            producer=clients.producer(),
            stage=stage,
            topics=[layout.download_requests, *(t.topic for t in layout.retry_tiers)],
            policy=retries,
            router=FailureRouter(stage.name, clients.group_id, layout.dead_letters),
            options=WorkerOptions(
                concurrency=settings.downloader.concurrency,
                batch_max_records=settings.batch_max_records,
                batch_max_interval_s=settings.batch_max_interval_s,
            ),
        )


STAGE = StageSpec(name=Stage.DOWNLOADER.value, group="mediaflow-downloader", open=open_worker)
"""The downloader as ``mediaflow run downloader`` runs it."""


__all__ = ["STAGE", "DownloaderStage", "open_worker"]
