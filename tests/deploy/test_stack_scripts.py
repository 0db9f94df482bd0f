"""The local stack started by ``deploy/stack.sh`` is up, idempotent and usable.

These tests run against the real stack (``make test`` starts it first); they
do not start or stop anything themselves, so other tests can share the stack.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError
from confluent_kafka.admin import AdminClient

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_SH = REPO_ROOT / "deploy" / "stack.sh"
STACK_DIR = Path(os.environ.get("MEDIAFLOW_STACK_DIR", REPO_ROOT / ".stack"))
KAFKA_BOOTSTRAP = f"127.0.0.1:{os.environ.get('MEDIAFLOW_KAFKA_PORT', '9092')}"
S3_ENDPOINT = f"http://127.0.0.1:{os.environ.get('MEDIAFLOW_S3_PORT', '9000')}"
S3_ACCESS_KEY = os.environ.get("MEDIAFLOW_S3_ACCESS_KEY", "mediaflow")
S3_SECRET_KEY = os.environ.get("MEDIAFLOW_S3_SECRET_KEY", "mediaflow-local-secret")


def run_stack(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``deploy/stack.sh`` with this interpreter as its Kafka readiness checker."""
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(
        [str(STACK_SH), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def read_pids() -> dict[str, str]:
    """The pids recorded by stack.sh, by service."""
    return {
        name: (STACK_DIR / "run" / f"{name}.pid").read_text().strip()
        for name in ("kafka", "s3proxy")
    }


def s3_client(secret_key: str = S3_SECRET_KEY) -> BaseClient:
    """An S3 client for the local S3Proxy, signing with SigV4."""
    return boto3.client(
        "s3",
        endpoint_url=S3_ENDPOINT,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(
            signature_version="s3v4",
            retries={"max_attempts": 1},
            connect_timeout=5,
            read_timeout=10,
        ),
    )


@pytest.fixture(scope="module", autouse=True)
def _stack_is_up() -> None:
    status = run_stack("status")
    if status.returncode != 0:
        pytest.fail(
            f"the local stack is not running; start it with `deploy/stack.sh up`:\n{status.stdout}"
        )


def test_status_exits_zero_and_reports_both_services_up() -> None:
    result = run_stack("status")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "kafka    up" in result.stdout
    assert "s3proxy  up" in result.stdout


def test_up_on_a_running_stack_is_a_quick_no_op() -> None:
    before = read_pids()
    started = time.monotonic()

    result = run_stack("up")

    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - started < 15
    assert "already running" in result.stdout
    assert read_pids() == before


def test_kafka_answers_a_metadata_request() -> None:
    admin = AdminClient({"bootstrap.servers": KAFKA_BOOTSTRAP})

    metadata = admin.list_topics(timeout=10)

    assert len(metadata.brokers) == 1


def test_s3_lists_buckets_with_the_configured_credentials() -> None:
    response = s3_client().list_buckets()

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_s3_refuses_a_wrong_secret_with_403() -> None:
    with pytest.raises(ClientError) as caught:
        s3_client(secret_key="not-the-secret").list_buckets()

    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
