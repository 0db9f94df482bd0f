"""S3 refusing our credentials or missing the bucket pauses the downloader like an outage.

Against the real S3 server (S3Proxy checks SigV4 signatures): a downloader
started with a wrong secret, or before its bucket exists, waits; it never
dead-letters, retries or commits a media for it, and stores everything once
the configuration is right.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from mediaflow.config import Secret, Settings
from mediaflow.events import MediaDownloadFailed, MediaStored
from mediaflow.kafka.topics import load_layout
from mediaflow.kafka.worker import WorkerOptions
from mediaflow.processors.downloader.stage import STAGE
from mediaflow.storage.s3 import ensure_bucket, s3_client
from simulator import Faults, MediaLibrary, running_simulator
from simulator.scratch import drop_bucket
from tests.support.downloader import (
    INSTANCE,
    TOKEN,
    dead_letters,
    events,
    objects,
    of_type,
    request_for,
    run_downloader,
    send,
    settings_for,
    tenants_file,
)
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration


def committed_offsets(settings: Settings) -> list[int]:
    """The downloader group's committed offsets on the request topic (none: empty list)."""
    topic = load_layout(settings.kafka).download_requests
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": STAGE.clients(settings).group_id,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        found = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
    finally:
        consumer.close()
    return [tp.offset for tp in found if tp.offset >= 0]


def retried(settings: Settings) -> int:
    return sum(len(read_all(settings, t.topic)) for t in load_layout(settings.kafka).retry_tiers)


def waits(cause: str) -> float:
    return REGISTRY.get_sample_value("mediaflow_storage_waits_total", {"cause": cause}) or 0.0


def quick_shutdown(**options: object) -> WorkerOptions:
    """Worker options whose stop lets in-flight work finish for half a second, not 20."""
    return WorkerOptions(**options, shutdown_grace_s=0.5)  # type: ignore[arg-type]


async def test_a_wrong_s3_secret_pauses_the_downloader_until_it_restarts_with_the_right_one(
    make_settings, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr("mediaflow.processors.downloader.stage.WorkerOptions", quick_shutdown)
    library = MediaLibrary(seed=51, max_size=20_000)
    media = [library.make("image") for _ in range(3)]
    before = waits("credentials")
    async with running_simulator(library, Faults(), {INSTANCE: TOKEN}) as sim:
        good = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants_file(tmp_path))
        wrong = dataclasses.replace(
            good, s3=dataclasses.replace(good.s3, secret_key=Secret("not-the-secret"))
        )
        send(good, [request_for(m) for m in media])
        with capture_logs() as logs:
            refused = asyncio.create_task(run_downloader(wrong, idle_exit_s=2))
            await asyncio.sleep(6)
            assert not dead_letters(good) and not events(good) and not retried(good)
            assert not refused.done()  # still waiting for the storage
            refused.cancel()  # the operator stops it to fix the secret
            with pytest.raises(asyncio.CancelledError):
                await refused

        assert committed_offsets(good) == []
        assert waits("credentials") - before >= len(media)
        [line, *_] = [e for e in logs if e["event"] == "storage_unavailable_waiting"]
        assert line["log_level"] == "error" and line["cause"] == "credentials"
        assert "MEDIAFLOW_S3_SECRET_KEY" in line["reason"]
        assert "not-the-secret" not in str(logs)

        await run_downloader(good, idle_exit_s=2)

    stored = of_type(good, MediaStored)
    assert sorted(e.sha256 for e in stored) == sorted(m.sha256_hex for m in media)
    assert len(objects(good)) == len(media)
    assert not dead_letters(good) and not of_type(good, MediaDownloadFailed)


async def test_a_missing_bucket_pauses_the_downloader_until_the_bucket_is_created(
    make_settings, tmp_path
) -> None:
    library = MediaLibrary(seed=52, max_size=20_000)
    media = [library.make("image") for _ in range(3)]
    before = waits("bucket_missing")
    async with running_simulator(library, Faults(), {INSTANCE: TOKEN}) as sim:
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants_file(tmp_path))
        drop_bucket(s3_client(settings.s3), settings.s3.bucket)
        send(settings, [request_for(m) for m in media])
        with capture_logs() as logs:
            worker = asyncio.create_task(run_downloader(settings, idle_exit_s=2))
            await asyncio.sleep(4)
            assert not dead_letters(settings) and not events(settings)
            assert not worker.done() and not objects_or_none(settings)
            ensure_bucket(s3_client(settings.s3), settings.s3)  # `mediaflow storage init`
            await worker

    [line, *_] = [e for e in logs if e["event"] == "storage_unavailable_waiting"]
    assert line["cause"] == "bucket_missing"
    assert (
        f"bucket '{settings.s3.bucket}' does not exist; run `mediaflow storage init`"
        in (line["reason"])
    )
    assert waits("bucket_missing") - before >= len(media)
    stored = of_type(settings, MediaStored)
    assert sorted(e.sha256 for e in stored) == sorted(m.sha256_hex for m in media)
    assert len(objects(settings)) == len(media)
    assert not dead_letters(settings) and not of_type(settings, MediaDownloadFailed)


def objects_or_none(settings: Settings) -> list[str]:
    """Keys in the bucket; none while it does not exist."""
    client = s3_client(settings.s3)
    names = [b["Name"] for b in client.list_buckets().get("Buckets", [])]
    if settings.s3.bucket not in names:
        return []
    return [o["Key"] for o in objects(settings)]
