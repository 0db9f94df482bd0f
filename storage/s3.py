"""S3-compatible object storage client: AWS, MinIO, R2, Spaces, Wasabi, S3Proxy.

boto3 is the only S3 client. Its errors are translated here into the
mediaflow error tree: anything that means "the storage cannot take anything
right now" becomes :class:`StorageUnavailable` (the downloader waits for it;
it is never the media's fault), with a ``cause``:

* ``unreachable`` / ``server_error``: an outage (connection refused, 5xx);
* ``credentials`` (``InvalidAccessKeyId``, ``SignatureDoesNotMatch``...),
  ``access_denied`` (``AccessDenied``, a bare 403 on HEAD) and
  ``bucket_missing`` (``NoSuchBucket``): configuration mistakes, whose message
  says what to fix (the variables to check, the command that creates the
  bucket). They stop every media alike, so they pause the downloader exactly
  like an outage rather than dead-letter each media in flight.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from mediaflow.config import S3Settings
from mediaflow.errors import MediaflowError, StorageCause, StorageUnavailable

_UNAVAILABLE_CODES = {"500", "502", "503", "504", "SlowDown", "ServiceUnavailable", "InternalError"}
_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
_DENIED_CODES = {"AccessDenied", "AllAccessDisabled", "403"}
_CHECK_KEYS = "check MEDIAFLOW_S3_ACCESS_KEY / MEDIAFLOW_S3_SECRET_KEY"


def s3_client(settings: S3Settings) -> Any:
    """Return a boto3 S3 client configured for the settings' endpoint.

    Checksums are sent only when the operation requires them: several
    S3-compatible servers reject the CRC32 headers boto3 adds by default.
    """
    return boto3.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=settings.access_key.reveal(),
        aws_secret_access_key=settings.secret_key.reveal(),
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": settings.addressing_style},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=32,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def error_code(exc: ClientError) -> str:
    """The S3 error code of a refused call (``NoSuchKey``, ``404``...); empty when it has none."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(exc: Exception, *, bucket: str) -> MediaflowError:
    """Map a botocore error to the mediaflow error tree, keeping it as the cause."""
    if isinstance(exc, EndpointConnectionError | ConnectionClosedError | ReadTimeoutError):
        return StorageUnavailable(f"S3 server unreachable: {type(exc).__name__}")
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code == "NoSuchBucket":
            return StorageUnavailable(
                f"bucket {bucket!r} does not exist; run `mediaflow storage init`",
                cause=StorageCause.BUCKET_MISSING,
            )
        if code in _CREDENTIAL_CODES:
            return StorageUnavailable(
                f"S3 refused our credentials for bucket {bucket!r} ({code}); {_CHECK_KEYS}",
                cause=StorageCause.CREDENTIALS,
            )
        if code in _DENIED_CODES:
            return StorageUnavailable(
                f"S3 denied access to bucket {bucket!r} ({code}); {_CHECK_KEYS}, and that "
                "the key may list, read, write and delete objects in the bucket",
                cause=StorageCause.ACCESS_DENIED,
            )
        if code in _UNAVAILABLE_CODES or status.startswith("5"):
            return StorageUnavailable(
                f"S3 server error {code or status}", cause=StorageCause.SERVER_ERROR
            )
        return MediaflowError(f"S3 error {code or status}")
    if isinstance(exc, BotoCoreError):
        return StorageUnavailable(f"S3 client error: {type(exc).__name__}")
    return MediaflowError(f"unexpected S3 failure: {type(exc).__name__}")


def head_object(client: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """HEAD one object; ``None`` when it does not exist.

    Raises:
        StorageUnavailable: the S3 server is down, or refuses the credentials or the bucket.
    """
    try:
        return dict(client.head_object(Bucket=bucket, Key=key))
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise translate(exc, bucket=bucket) from exc
    except BotoCoreError as exc:
        raise translate(exc, bucket=bucket) from exc


def ensure_bucket(client: Any, settings: S3Settings) -> bool:
    """Create the bucket, private, if it does not exist. Return whether it was created."""
    try:
        client.head_bucket(Bucket=settings.bucket)
        return False
    except ClientError as exc:
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise translate(exc, bucket=settings.bucket) from exc
    except BotoCoreError as exc:
        raise translate(exc, bucket=settings.bucket) from exc
    try:
        kwargs: dict[str, Any] = {"Bucket": settings.bucket}
        if settings.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}
        client.create_bucket(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, bucket=settings.bucket) from exc
    return True


__all__ = ["ensure_bucket", "error_code", "head_object", "s3_client", "translate"]
