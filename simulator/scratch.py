"""Scratch resources of short runs against the local stack: tests, the demo, benchmarks.

Such a run wants retried media back while it watches, so its topics file
declares seconds-long retry tiers (:func:`with_retry_delays`), and it leaves
no bucket behind (:func:`drop_bucket`). Neither is something a deployment
does, so neither is in the product.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mediaflow.errors import ConfigError
from mediaflow.storage.s3 import error_code, translate


def with_retry_delays(text: str, retry_delays_s: Sequence[int]) -> str:
    """Return a topics file (``deploy/topics.toml``'s text) whose retry tiers have these delays.

    Tests, the demo and the benchmarks use seconds-long tiers so a retried
    media comes back while they watch; tier ``N`` is named ``media.download-retry.tN``.

    Args:
        text: a topics file with the ``# Retry tiers`` comment before its
            tiers and ``mediaflow.dlq`` declared right after them.
        retry_delays_s: the delay of each tier, in order.

    Raises:
        ConfigError: ``text`` does not have that shape.

    """
    marker, dlq = "# Retry tiers", '[[topic]]\nname = "mediaflow.dlq"'
    if marker not in text or dlq not in text:
        raise ConfigError("topics file lacks the '# Retry tiers' comment or mediaflow.dlq")
    head = text.split(marker, 1)[0]
    tail = text.split(dlq, 1)[1]
    tiers = "".join(
        f'[[topic]]\nname = "media.download-retry.t{i}"\nrole = "retry"\ndelay_s = {d}\n'
        'partitions = 3\nretention_ms = 604800000\ncleanup_policy = "delete"\n\n'
        for i, d in enumerate(retry_delays_s, 1)
    )
    return head + tiers + dlq + tail


def drop_bucket(client: Any, bucket: str) -> None:
    """Delete a throwaway bucket (a test's, a benchmark run's) with everything in it.

    Open multipart uploads are aborted and objects deleted one by one (not with
    DeleteObjects, whose required checksum header some S3-compatible servers
    refuse), then the bucket goes. A bucket that is already gone is fine.

    Raises:
        StorageUnavailable: the server cannot be reached.
    """
    try:
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for upload in page.get("Uploads", []):
                client.abort_multipart_upload(
                    Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for entry in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=entry["Key"])
        client.delete_bucket(Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) != "NoSuchBucket":
            raise translate(exc, bucket=bucket) from exc
    except BotoCoreError as exc:
        raise translate(exc, bucket=bucket) from exc


__all__ = ["drop_bucket", "with_retry_delays"]
