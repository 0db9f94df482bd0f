"""The dashboard's CSP lets previews load from wherever presigned links point, and nowhere else."""

import dataclasses

from mediaflow.config import S3Settings
from mediaflow.ops.ui.security import content_security_policy, media_origin
from mediaflow.storage.s3 import s3_client


def test_previews_are_allowed_from_the_configured_endpoint():
    s3 = s3_client(S3Settings(endpoint_url="http://127.0.0.1:9000"))
    assert media_origin(s3, "media") == "http://127.0.0.1:9000"


def test_previews_on_aws_are_allowed_from_the_buckets_own_host():
    settings = dataclasses.replace(
        S3Settings(), endpoint_url=None, addressing_style="virtual", region="sa-east-1"
    )
    origin = media_origin(s3_client(settings), "media")
    assert origin.startswith("https://media.s3.") and origin.endswith(".amazonaws.com")
    assert f"img-src 'self' {origin};" in content_security_policy(origin)
