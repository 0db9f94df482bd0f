"""Fixtures shared by the whole suite.

Integration tests run against the real local stack (``deploy/stack.sh up``,
which ``make test`` runs first), found on the ports the stack scripts read
(``MEDIAFLOW_KAFKA_PORT``, ``MEDIAFLOW_S3_PORT``; PostgreSQL's URL comes from
``MEDIAFLOW_TEST_PG_URL``, see ``tests/support/projection.py``). Each test gets
topics and a bucket of its own (a unique topic prefix and bucket name), so
tests never see each other's records and the suite can run against a stack
that is also used by hand.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from mediaflow.config import REPO_ROOT, Settings
from mediaflow.kafka.clients import admin_client
from mediaflow.kafka.topics import TopicLayout, apply, delete, load_layout
from mediaflow.storage.s3 import ensure_bucket, s3_client
from simulator.scratch import drop_bucket, with_retry_delays
from tests.support.stack import stack_env

TEST_RETRY_DELAYS = (1, 2)


@pytest.fixture(scope="session")
def stack() -> None:
    """Fail (not skip) with a clear message when the local stack is not running."""
    import boto3
    from botocore.config import Config

    settings = Settings.from_env(stack_env())
    try:
        AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers}).list_topics(timeout=10)
    except Exception as exc:
        pytest.fail(
            f"Kafka is not reachable at {settings.kafka.bootstrap_servers} ({exc}); "
            "run `make stack-up`"
        )
    try:
        boto3.client(
            "s3",
            endpoint_url=settings.s3.endpoint_url,
            aws_access_key_id=settings.s3.access_key.reveal(),
            aws_secret_access_key=settings.s3.secret_key.reveal(),
            region_name=settings.s3.region,
            config=Config(connect_timeout=3, retries={"max_attempts": 1}),
        ).list_buckets()
    except Exception as exc:
        pytest.fail(
            f"S3 is not reachable at {settings.s3.endpoint_url} ({exc}); run `make stack-up`"
        )


def write_topics_file(path: Path, retry_delays: tuple[int, ...]) -> Path:
    """Write a copy of deploy/topics.toml whose retry tiers have the given delays."""
    path.write_text(
        with_retry_delays((REPO_ROOT / "deploy" / "topics.toml").read_text(), retry_delays)
    )
    return path


@pytest.fixture
def make_settings(stack: None, tmp_path: Path) -> Iterator[Callable[..., Settings]]:
    """Factory: settings with a unique topic prefix (topics created) and a unique bucket.

    Keyword arguments become ``MEDIAFLOW_*`` variables (``s3_part_size=5242880``).
    ``retry_delays`` sets the retry tiers (default: two short tiers, 1 s and 2 s).
    """

    created: list[Settings] = []

    def factory(
        *,
        retry_delays: tuple[int, ...] = TEST_RETRY_DELAYS,
        create: bool = True,
        **overrides: object,
    ) -> Settings:
        unique = uuid.uuid4().hex[:10]
        env = stack_env()
        env.update(
            {
                "MEDIAFLOW_TOPIC_PREFIX": f"t{unique}.",
                "MEDIAFLOW_S3_BUCKET": f"t-{unique}",
                "MEDIAFLOW_TOPICS_FILE": str(
                    write_topics_file(tmp_path / f"topics-{unique}.toml", retry_delays)
                ),
                "MEDIAFLOW_PROJECTION_DB_URL": f"sqlite:///{tmp_path / f'projection-{unique}.db'}",
                "MEDIAFLOW_ALLOW_PRIVATE_ADDRESSES": "true",
                "MEDIAFLOW_BATCH_MAX_INTERVAL_S": "0.2",
                "MEDIAFLOW_LOG_FORMAT": "json",
            }
        )
        env.update({f"MEDIAFLOW_{k.upper()}": str(v) for k, v in overrides.items()})
        settings = Settings.from_env(env)
        if create:
            apply(admin_client(settings.kafka), load_layout(settings.kafka).specs)
            ensure_bucket(s3_client(settings.s3), settings.s3)
            created.append(settings)
        return settings

    yield factory
    for done in created:  # keep the shared broker and S3 server small: drop what it made
        delete(admin_client(done.kafka), [s.name for s in load_layout(done.kafka).specs])
        drop_bucket(s3_client(done.s3), done.s3.bucket)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Settings with fresh topics and a fresh bucket."""
    return make_settings()


@pytest.fixture
def layout(settings: Settings) -> TopicLayout:
    """The topic names of this test."""
    return load_layout(settings.kafka)
