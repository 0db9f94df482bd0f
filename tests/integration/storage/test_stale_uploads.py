"""Multipart uploads left at a key by a crashed copy are aborted, and looking for them never
stops an upload (against the real S3 server)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mediaflow.config import Settings
from mediaflow.storage.objects import STALE_CHECKS_PER_SWEEP, MediaStore
from mediaflow.storage.s3 import s3_client

PART = 5 * 1024 * 1024
KEY = "cliente_1/instance_a/video/2026/11/29/3EB0AA-abc.mp4"
BODY = bytes(range(256)) * (PART * 2 // 256) + b"tail"  # two full parts and a short last one


@pytest.fixture
def small_parts(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(s3_multipart_threshold=PART, s3_part_size=PART)


class ListingFails:
    """The real client, except that listing multipart uploads fails ``failures`` times.

    S3Proxy's file store answers 500 by itself when another upload is writing
    a part during the listing, but not on demand.
    """

    def __init__(
        self, client: Any, failures: int, code: str = "InternalError", status: int = 500
    ) -> None:
        self._client = client
        self.failures = failures
        self.error = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
        self.listings = 0

    def list_multipart_uploads(self, **kwargs: Any) -> Any:
        self.listings += 1
        if self.failures:
            self.failures -= 1
            raise ClientError(self.error, "ListMultipartUploads")  # type: ignore[arg-type]
        return self._client.list_multipart_uploads(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def open_uploads(client: Any, bucket: str) -> list[str]:
    listing = client.list_multipart_uploads(Bucket=bucket, Prefix=KEY)
    return [u["UploadId"] for u in listing.get("Uploads", []) if u["Key"] == KEY]


async def store_body(store: MediaStore) -> None:
    upload = store.upload(KEY, "video/mp4", {"media-id": "m1"})
    for start in range(0, len(BODY), 1 << 20):
        await upload.write(BODY[start : start + (1 << 20)])
    await upload.complete()


async def test_a_new_upload_aborts_the_one_a_crashed_copy_left_at_its_key(
    small_parts: Settings,
) -> None:
    client, bucket = s3_client(small_parts.s3), small_parts.s3.bucket
    crashed = client.create_multipart_upload(Bucket=bucket, Key=KEY)["UploadId"]
    client.upload_part(Bucket=bucket, Key=KEY, UploadId=crashed, PartNumber=1, Body=b"x" * PART)

    await store_body(MediaStore(client, small_parts.s3))

    assert open_uploads(client, bucket) == []
    assert client.get_object(Bucket=bucket, Key=KEY)["Body"].read() == BODY


async def test_a_failed_listing_does_not_stop_the_upload_and_the_next_sweep_cleans_up(
    small_parts: Settings,
) -> None:
    client, bucket = s3_client(small_parts.s3), small_parts.s3.bucket
    crashed = client.create_multipart_upload(Bucket=bucket, Key=KEY)["UploadId"]
    store = MediaStore(ListingFails(client, failures=1), small_parts.s3)

    await store_body(store)

    assert client.get_object(Bucket=bucket, Key=KEY)["Body"].read() == BODY
    assert open_uploads(client, bucket) == [crashed]  # not found yet: the listing failed
    await store.sweep()
    assert open_uploads(client, bucket) == []


async def test_a_sweep_during_our_own_upload_leaves_it_alone(small_parts: Settings) -> None:
    client, bucket = s3_client(small_parts.s3), small_parts.s3.bucket
    store = MediaStore(ListingFails(client, failures=1), small_parts.s3)
    upload = store.upload(KEY, "video/mp4", {"media-id": "m1"})
    await upload.write(BODY[: PART * 2])  # the listing fails; our upload is opened anyway

    await store.sweep()  # the deferred check finds our open upload: not stale
    await upload.write(BODY[PART * 2 :])
    stored = await upload.complete()

    assert stored.size == len(BODY)
    assert client.get_object(Bucket=bucket, Key=KEY)["Body"].read() == BODY
    assert open_uploads(client, bucket) == []


async def test_a_refused_listing_is_skipped_not_retried(small_parts: Settings) -> None:
    client, bucket = s3_client(small_parts.s3), small_parts.s3.bucket
    crashed = client.create_multipart_upload(Bucket=bucket, Key=KEY)["UploadId"]
    refusing = ListingFails(client, failures=1, code="InvalidRequest", status=400)
    store = MediaStore(refusing, small_parts.s3)

    await store_body(store)
    await store.sweep()

    assert client.get_object(Bucket=bucket, Key=KEY)["Body"].read() == BODY
    assert refusing.listings == 1  # a 4xx will not change: no second try
    assert open_uploads(client, bucket) == [crashed]


async def test_deferred_checks_are_spread_over_sweeps(small_parts: Settings) -> None:
    failing = ListingFails(s3_client(small_parts.s3), failures=STALE_CHECKS_PER_SWEEP + 2)
    store = MediaStore(failing, small_parts.s3)
    for i in range(STALE_CHECKS_PER_SWEEP + 2):
        await store.abort_stale(f"{KEY}.{i}")

    await store.sweep()
    assert failing.listings == STALE_CHECKS_PER_SWEEP + 2 + STALE_CHECKS_PER_SWEEP
    await store.sweep()
    await store.sweep()
    assert failing.listings == 2 * (STALE_CHECKS_PER_SWEEP + 2)  # every key checked once more
