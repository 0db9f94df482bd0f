"""Media objects in the bucket: find what is already stored, stream new objects in.

:class:`MediaStore` wraps a boto3 client (blocking calls run in a thread with
:func:`asyncio.to_thread`). An :class:`Upload` takes plaintext chunks and never
holds more than a few parts in memory:

* up to ``multipart_threshold`` bytes are buffered and sent with one PUT;
* above it, a multipart upload is created (any stale one left by a crashed
  copy at the same key is aborted first) and parts of ``part_size`` are sent,
  at most :data:`PARTS_IN_FLIGHT` at a time;
* on *any* failure or cancellation the multipart upload is aborted, so no
  orphan parts stay behind. When the abort itself fails (S3 is down), the
  upload is remembered and aborted later by :meth:`MediaStore.sweep`.

Cleaning up after others is housekeeping and never stops an upload: when the
listing of stale uploads fails because the server is having trouble
(S3Proxy's file store answers it 500 while other uploads write their parts),
the key is checked again by :meth:`MediaStore.sweep` (a few keys per sweep, a
bounded number in all); when the server refuses it (a 4xx), the check is
skipped. Uploads this process has open are never taken for stale ones.

At about 470 lines it stays one module: :class:`MediaStore` and
:class:`Upload` share the bookkeeping of open, deferred and stale multipart
uploads; split apart, each would reach into the other's state.

When the final key is not known up front (the SHA-256 of the content is only
known at the end), the upload goes to a staging key and is server-side copied
to the final key with its metadata, then the staging object is deleted.

Every object is written with a ``Content-Disposition`` (``attachment`` at
least), and :func:`download_url` presigns links that make a browser save an
object, never render it (see :mod:`mediaflow.stored_content`).

Every botocore error is translated by :func:`mediaflow.storage.s3.translate`
(``StorageUnavailable`` when the server is down or refuses the credentials
or the bucket).

At about 470 lines it stays one module: :class:`MediaStore` and
:class:`Upload` share the bookkeeping of multipart uploads (an upload
registers with its store, the store's sweep aborts what an upload could
not), and that contract is easiest to check read together.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mediaflow.config import S3Settings
from mediaflow.errors import MediaflowError, StorageUnavailable
from mediaflow.logging import get_logger
from mediaflow.storage.s3 import error_code, head_object, translate

log = get_logger("mediaflow.storage")

PARTS_IN_FLIGHT = 2
"""Parts of one upload sent concurrently: overlaps the network with the download."""

STAGING_PREFIX = "_staging/"
"""Where uploads whose final key is not yet known are written."""

STALE_CHECKS_PER_SWEEP = 8
"""Deferred stale-upload checks per :meth:`MediaStore.sweep` (which runs before every attempt)."""

MAX_UNCHECKED = 1000
"""Deferred stale-upload checks kept; beyond, new ones are dropped (a lifecycle rule's job)."""

ATTACHMENT = "attachment"
"""The least ``Content-Disposition`` of an object: saved by a browser, not rendered."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object in the bucket."""

    bucket: str
    key: str
    size: int
    sha256: str
    content_type: str
    metadata: Mapping[str, str] = field(default_factory=dict)


class MediaStore:
    """Media objects of one bucket.

    Args:
        client: a boto3 S3 client (see :func:`mediaflow.storage.s3.s3_client`).
        settings: bucket name, multipart threshold and part size.
        page_size: keys asked for per listing page (S3 returns at most 1000).
    """

    def __init__(self, client: Any, settings: S3Settings, *, page_size: int = 1000) -> None:
        self._client = client
        self._page_size = page_size
        self.settings = settings
        self.bucket = settings.bucket
        self._pending_aborts: list[tuple[str, str]] = []
        self._unchecked: dict[str, None] = {}
        """Keys whose stale-upload listing failed, oldest first: checked again by :meth:`sweep`."""
        self._open: set[str] = set()
        """Ids of the multipart uploads this process has open: never stale."""

    async def call(self, method: str, **kwargs: Any) -> Any:
        """Run one boto3 call in a thread, translating its errors.

        Raises:
            StorageUnavailable: the server is down, answers 5xx, refuses our
                credentials or has no such bucket (see ``cause``).
            MediaflowError: any other S3 error.
        """
        function: Callable[..., Any] = getattr(self._client, method)
        try:
            return await asyncio.to_thread(function, Bucket=self.bucket, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, bucket=self.bucket) from exc

    async def find_existing(
        self, prefix: str, media_id: str, sha256_hex: str | None = None
    ) -> StoredObject | None:
        """Return the object already stored for ``media_id`` under ``prefix``, if any.

        Keys are deterministic up to the hash (``.../{message_id}-``), so the
        listing of that prefix holds every candidate; the metadata says which
        media each is. Every page of the listing is read: however many objects
        share the prefix (one message id reused by a hostile sender), a stored
        media is found.

        Args:
            prefix: the key up to the hash.
            media_id: the media's id (metadata ``media-id``).
            sha256_hex: when known, the object must also carry this hash.
        """
        pages: dict[str, Any] = {"Prefix": prefix, "MaxKeys": self._page_size}
        while True:
            listing = await self.call("list_objects_v2", **pages)
            for entry in listing.get("Contents", []):
                head = await self.head(entry["Key"])
                if head is None or head.metadata.get("media-id") != media_id:
                    continue
                if sha256_hex is None or head.sha256 == sha256_hex:
                    return head
            token = listing.get("NextContinuationToken")
            if not listing.get("IsTruncated") or not token:
                return None
            pages["ContinuationToken"] = token

    async def head(self, key: str) -> StoredObject | None:
        """Describe one object, or ``None`` if it does not exist."""
        response = await asyncio.to_thread(head_object, self._client, self.bucket, key)
        if response is None:
            return None
        metadata = dict(response.get("Metadata", {}))
        return StoredObject(
            bucket=self.bucket,
            key=key,
            size=int(response.get("ContentLength", 0)),
            sha256=metadata.get("sha256", ""),
            content_type=str(response.get("ContentType", "")),
            metadata=metadata,
        )

    def upload(
        self,
        key: str,
        content_type: str,
        metadata: Mapping[str, str],
        *,
        disposition: str = ATTACHMENT,
    ) -> Upload:
        """Start streaming an object to ``key`` (a final key or a staging key).

        Args:
            key: where to write.
            content_type: the object's ``Content-Type``.
            metadata: user metadata (``x-amz-meta-*``).
            disposition: the object's ``Content-Disposition``.
        """
        return Upload(self, key, content_type, dict(metadata), disposition)

    async def sweep(self) -> None:
        """Finish deferred housekeeping (best effort; what fails again stays deferred).

        Aborts the uploads whose abort failed, and looks again for stale uploads
        at the oldest :data:`STALE_CHECKS_PER_SWEEP` keys whose listing failed.
        """
        pending, self._pending_aborts = self._pending_aborts, []
        for key, upload_id in pending:
            await self.abort_quietly(key, upload_id)
        for key in list(self._unchecked)[:STALE_CHECKS_PER_SWEEP]:
            del self._unchecked[key]
            await self.abort_stale(key)

    async def start_multipart(
        self, key: str, content_type: str, metadata: Mapping[str, str], disposition: str
    ) -> str:
        """Open a multipart upload at ``key`` after aborting stale ones there; return its id.

        Call :meth:`multipart_closed` once it is completed or aborted.

        Raises:
            StorageUnavailable: S3 is down.
        """
        await self.abort_stale(key)
        created = await self.call(
            "create_multipart_upload",
            Key=key,
            ContentType=content_type,
            ContentDisposition=disposition,
            Metadata=dict(metadata),
        )
        upload_id = str(created["UploadId"])
        self._open.add(upload_id)
        return upload_id

    def multipart_closed(self, upload_id: str) -> None:
        """An upload opened by :meth:`start_multipart` was completed or aborted."""
        self._open.discard(upload_id)

    async def abort_stale(self, key: str) -> None:
        """Abort the multipart uploads at exactly ``key`` but our own open ones (best effort).

        Those are left by a crashed copy, or by a copy that lost the media in a
        rebalance (whose Kafka output is fenced anyway).

        Never raises for S3 trouble: a listing the server failed (or refused
        for our credentials) defers the key to :meth:`sweep`, one it refused
        otherwise is skipped, a failed abort is remembered like any other.
        """
        try:
            listing = await self.call("list_multipart_uploads", Prefix=key)
        except StorageUnavailable as exc:
            self._defer_stale_check(key, exc.message)
            return
        except MediaflowError as exc:
            log.warning("stale_multipart_check_skipped", key=key, reason=exc.message)
            return
        for upload in listing.get("Uploads", []):
            if upload.get("Key") == key and upload["UploadId"] not in self._open:
                log.info("stale_multipart_aborted", key=key)
                await self.abort_quietly(key, upload["UploadId"])

    def _defer_stale_check(self, key: str, reason: str) -> None:
        if len(self._unchecked) >= MAX_UNCHECKED and key not in self._unchecked:
            log.warning("stale_multipart_check_dropped", key=key, reason=reason)
            return
        log.warning("stale_multipart_check_deferred", key=key, reason=reason)
        self._unchecked[key] = None

    async def abort_quietly(self, key: str, upload_id: str) -> None:
        """Abort one multipart upload; remember it for :meth:`sweep` if S3 cannot be reached."""
        try:
            await self._abort(key, upload_id)
        except MediaflowError as exc:
            log.warning("multipart_abort_deferred", key=key, reason=exc.message)
            self._pending_aborts.append((key, upload_id))

    async def _abort(self, key: str, upload_id: str) -> None:
        """Abort one multipart upload; one already gone (aborted by a cancelled attempt) is fine."""
        try:
            await asyncio.to_thread(
                self._client.abort_multipart_upload, Bucket=self.bucket, Key=key, UploadId=upload_id
            )
        except ClientError as exc:
            if error_code(exc) not in ("NoSuchUpload", "404"):
                raise translate(exc, bucket=self.bucket) from exc
        except BotoCoreError as exc:
            raise translate(exc, bucket=self.bucket) from exc


class Upload:
    """One object being streamed into the bucket. Use once: write..., then complete or abort."""

    def __init__(
        self,
        store: MediaStore,
        key: str,
        content_type: str,
        metadata: dict[str, str],
        disposition: str = ATTACHMENT,
    ) -> None:
        self._store = store
        self.key = key
        self._content_type = content_type
        self._metadata = metadata
        self._disposition = disposition
        self._buffer: deque[bytes | memoryview] = deque()
        self._buffered = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._next_part = 1
        self.size = 0

    async def write(self, data: bytes) -> None:
        """Add bytes; sends a part whenever a full one is buffered (awaiting = backpressure).

        Raises:
            StorageUnavailable: S3 is down.
        """
        if not data:
            return
        self._buffer.append(data)
        self._buffered += len(data)
        self.size += len(data)
        threshold = max(self._store.settings.multipart_threshold, self._store.settings.part_size)
        if self._upload_id is None and self._buffered <= threshold:
            return
        part_size = self._store.settings.part_size
        while self._buffered >= part_size:
            await self._send_part(self._take(part_size))

    def _take(self, size: int) -> bytes:
        """Remove and return the first ``size`` buffered bytes (copied once, into the part)."""
        parts: list[bytes | memoryview] = []
        needed = size
        while needed:
            chunk = self._buffer.popleft()
            if len(chunk) > needed:
                # Views: the chunk cut at the part boundary is copied by the join only.
                view = memoryview(chunk)
                self._buffer.appendleft(view[needed:])
                chunk = view[:needed]
            parts.append(chunk)
            needed -= len(chunk)
        self._buffered -= size
        return b"".join(parts)

    async def complete(
        self, final_key: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> StoredObject:
        """Finish the object; when ``final_key`` differs from :attr:`key`, move it there.

        Args:
            final_key: where the object must end up (``None``: where it was written).
            metadata: replaces the metadata given at the start (e.g. with the sha256).

        Raises:
            StorageUnavailable: S3 is down (the caller aborts).
        """
        final_key = final_key or self.key
        meta = dict(metadata) if metadata is not None else self._metadata
        if self._upload_id is None:
            # Small object: everything is in memory, so write it straight to its final key.
            await self._store.call(
                "put_object",
                Key=final_key,
                Body=self._take(self._buffered),
                ContentType=self._content_type,
                ContentDisposition=self._disposition,
                Metadata=meta,
            )
            return self._stored(final_key, meta)
        if self._buffered:
            await self._send_part(self._take(self._buffered))
        await self._drain()
        parts = sorted(self._parts, key=lambda p: p["PartNumber"])
        await self._store.call(
            "complete_multipart_upload",
            Key=self.key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": parts},
        )
        self._store.multipart_closed(self._upload_id)
        self._upload_id = None
        if final_key != self.key:
            await self._store.call(
                "copy_object",
                Key=final_key,
                CopySource={"Bucket": self._store.bucket, "Key": self.key},
                MetadataDirective="REPLACE",
                ContentType=self._content_type,
                ContentDisposition=self._disposition,
                Metadata=meta,
            )
            await self._store.call("delete_object", Key=self.key)
        return self._stored(final_key, meta)

    async def abort(self) -> None:
        """Drop everything sent so far. Never raises; safe to call twice and under cancellation."""
        # A part already handed to its thread cannot be cancelled: cancelling
        # the task let the part land after the abort, an orphan of an aborted
        # upload (S3Proxy lists it as a ".mpus-" object). Let in-flight parts
        # finish or fail first.
        sending, self._sending = self._sending, set()
        with contextlib.suppress(BaseException):
            await asyncio.shield(asyncio.gather(*sending, return_exceptions=True))
        self._buffer.clear()
        self._buffered = 0
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None:
            self._store.multipart_closed(upload_id)
            # Shielded: a cancelled attempt must still remove its parts.
            await asyncio.shield(self._store.abort_quietly(self.key, upload_id))

    def _stored(self, key: str, meta: Mapping[str, str]) -> StoredObject:
        return StoredObject(
            bucket=self._store.bucket,
            key=key,
            size=self.size,
            sha256=meta.get("sha256", ""),
            content_type=self._content_type,
            metadata=dict(meta),
        )

    async def _send_part(self, body: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = await self._store.start_multipart(
                self.key, self._content_type, self._metadata, self._disposition
            )
        while len(self._sending) >= PARTS_IN_FLIGHT:
            done, _ = await asyncio.wait(self._sending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                self._sending.discard(task)
                task.result()  # raise the first part failure here
        number, self._next_part = self._next_part, self._next_part + 1
        task = asyncio.create_task(self._put_part(number, body))
        self._sending.add(task)

    async def _put_part(self, number: int, body: bytes) -> None:
        response = await self._store.call(
            "upload_part", Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})

    async def _drain(self) -> None:
        sending, self._sending = self._sending, set()
        results = await asyncio.gather(*sending, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result


def download_url(
    client: Any, bucket: str, key: str, *, content_type: str, disposition: str, ttl_s: int
) -> str:
    """A presigned GET of one object that makes a browser save it, never render it.

    The link's signed ``response-content-type`` and ``response-content-disposition``
    replace the stored headers in the answer (S3, MinIO and S3Proxy honour
    them), so an object stored before its headers were made safe is safe too.

    Args:
        client: a boto3 S3 client.
        bucket: the object's bucket.
        key: the object's key.
        content_type: the ``Content-Type`` the answer carries.
        disposition: the ``Content-Disposition`` the answer carries.
        ttl_s: how long the link stays valid.
    """
    return str(
        client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": bucket,
                "Key": key,
                "ResponseContentType": content_type,
                "ResponseContentDisposition": disposition,
            },
            ExpiresIn=ttl_s,
        )
    )


__all__ = [
    "ATTACHMENT",
    "PARTS_IN_FLIGHT",
    "STAGING_PREFIX",
    "MediaStore",
    "StoredObject",
    "Upload",
    "download_url",
]
