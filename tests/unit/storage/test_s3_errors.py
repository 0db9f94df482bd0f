"""botocore errors in the error tree: storage refusals wait like outages and say what to fix."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from mediaflow.errors import MediaflowError, StorageCause, StorageUnavailable, TransientError
from mediaflow.storage.s3 import translate


def refused(code: str, status: int, operation: str = "PutObject") -> ClientError:
    response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, operation)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status", "cause"),
    [
        ("InvalidAccessKeyId", 403, StorageCause.CREDENTIALS),
        ("SignatureDoesNotMatch", 403, StorageCause.CREDENTIALS),
        ("AccessDenied", 403, StorageCause.ACCESS_DENIED),
        ("403", 403, StorageCause.ACCESS_DENIED),  # HEAD: no body, no code
        ("NoSuchBucket", 404, StorageCause.BUCKET_MISSING),
        ("SlowDown", 503, StorageCause.SERVER_ERROR),
        ("500", 500, StorageCause.SERVER_ERROR),
    ],
)
def test_refusals_and_outages_make_the_downloader_wait_with_their_cause(
    code: str, status: int, cause: StorageCause
) -> None:
    error = translate(refused(code, status), bucket="media")
    assert isinstance(error, StorageUnavailable) and error.cause is cause


def test_a_refused_credential_names_the_variables_to_fix() -> None:
    error = translate(refused("SignatureDoesNotMatch", 403), bucket="media")
    assert error.message == (
        "S3 refused our credentials for bucket 'media' (SignatureDoesNotMatch); "
        "check MEDIAFLOW_S3_ACCESS_KEY / MEDIAFLOW_S3_SECRET_KEY"
    )
    assert isinstance(error, StorageUnavailable) and error.cause.misconfigured


def test_a_missing_bucket_names_the_command_that_creates_it() -> None:
    error = translate(refused("NoSuchBucket", 404), bucket="media")
    assert error.message == "bucket 'media' does not exist; run `mediaflow storage init`"


def test_an_unreachable_server_is_an_outage_not_a_mistake() -> None:
    error = translate(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), bucket="m")
    assert isinstance(error, StorageUnavailable) and error.cause is StorageCause.UNREACHABLE
    assert not error.cause.misconfigured


def test_another_refusal_is_not_taken_for_an_outage() -> None:
    error = translate(refused("InvalidArgument", 400), bucket="media")
    assert isinstance(error, MediaflowError) and not isinstance(error, TransientError)
