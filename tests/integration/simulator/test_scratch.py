"""Throwaway buckets against the real S3 server: dropped with everything in them."""

import pytest

from mediaflow.config import Settings
from mediaflow.errors import StorageUnavailable
from mediaflow.storage.s3 import s3_client
from simulator.scratch import drop_bucket


def test_a_dropped_bucket_takes_its_objects_and_open_uploads_with_it(settings: Settings) -> None:
    client, bucket = s3_client(settings.s3), settings.s3.bucket
    for i in range(3):
        client.put_object(Bucket=bucket, Key=f"cliente_1/instance_a/image/{i}.jpg", Body=b"x" * 10)
    client.create_multipart_upload(Bucket=bucket, Key="cliente_1/instance_a/video/big.mp4")

    drop_bucket(client, bucket)

    names = [b["Name"] for b in client.list_buckets().get("Buckets", [])]
    assert bucket not in names


def test_dropping_a_bucket_that_is_gone_is_fine(settings: Settings) -> None:
    client = s3_client(settings.s3)
    drop_bucket(client, settings.s3.bucket)
    drop_bucket(client, settings.s3.bucket)  # the fixture's teardown drops it once more


def test_dropping_on_an_unreachable_server_says_so() -> None:
    unreachable = Settings.from_env({"MEDIAFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:1"})
    client = s3_client(unreachable.s3)
    with pytest.raises(StorageUnavailable):
        drop_bucket(client, "anything")
