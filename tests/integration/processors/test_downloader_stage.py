"""The downloader against the real stack: Kafka, S3Proxy, and the fake W-API/CDN
(simulator/) over loopback HTTP with real WhatsApp encryption."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from mediaflow.config import REPO_ROOT
from mediaflow.events import MediaDeadLettered, MediaDownloadFailed, MediaStored
from mediaflow.kafka import headers as h
from simulator import Faults, MediaLibrary, SimulatorThread, running_simulator
from tests.support.downloader import (
    INSTANCE,
    TOKEN,
    dead_letters,
    objects,
    of_type,
    open_uploads,
    request_for,
    run_downloader,
    send,
    settings_for,
    tenants_file,
)
from tests.support.stack import stack_env

pytestmark = pytest.mark.integration


async def test_every_media_type_is_stored_with_its_key_content_type_and_hash(
    make_settings, tmp_path
) -> None:
    library = MediaLibrary(seed=1, max_size=200_000)
    media = [
        library.make("image"),
        library.make("video"),
        library.make("audio", "ptt"),
        library.make("document", file_name="Relatório.pdf"),
        library.make("sticker"),
        library.large(6 * 1024 * 1024, "video"),  # multipart
    ]
    async with running_simulator(library, Faults(), {INSTANCE: TOKEN}) as sim:
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants_file(tmp_path))
        requests = [request_for(m) for m in media]
        send(settings, requests)
        await run_downloader(settings, idle_exit_s=2)
    stored = {e.media_id: e for e in of_type(settings, MediaStored)}
    by_key = {o["Key"]: o for o in objects(settings)}
    assert len(by_key) == len(media)
    for req, m in zip(requests, media, strict=True):
        event = stored[req.media_id]
        assert event.sha256 == m.sha256_hex and event.size == m.size
        assert event.info == req.info  # the log describes the media without its request
        expected_prefix = (
            f"cliente_7/instance_{INSTANCE}/{m.media_type.value}/2025/01/02/{req.info.message_id}-"
        )
        assert event.key.startswith(expected_prefix + m.sha256_hex[:12] + ".")
        head = by_key[event.key]
        assert head["ContentType"] == m.mimetype.split(";")[0]
        assert head["Metadata"]["sha256"] == m.sha256_hex
        assert head["Metadata"]["media-id"] == req.media_id
    assert not dead_letters(settings)
    assert not open_uploads(settings)


async def test_a_redelivered_request_is_not_downloaded_or_stored_twice(
    make_settings, tmp_path
) -> None:
    library = MediaLibrary(seed=2, max_size=50_000)
    m = library.make("image")
    async with running_simulator(library, Faults(), {INSTANCE: TOKEN}) as sim:
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants_file(tmp_path))
        req = request_for(m)
        send(settings, [req])
        await run_downloader(settings, idle_exit_s=1.5)
        downloads = sim.calls.count("cdn") + sim.calls.count("files")
        send(settings, [req])
        await run_downloader(settings, idle_exit_s=1.5)
        assert sim.calls.count("cdn") + sim.calls.count("files") == downloads
    paths = [e.fetch_path for e in of_type(settings, MediaStored)]
    assert sorted(paths) == ["existing", "wapi"]
    assert len(objects(settings)) == 1


async def test_wapi_500_is_retried_after_its_due_time_and_then_stored(
    make_settings, tmp_path
) -> None:
    library = MediaLibrary(seed=3, max_size=50_000)
    m = library.make("image")
    faults = Faults()
    faults.script("wapi", m.cdn_id, [500, 200])
    async with running_simulator(library, faults, {INSTANCE: TOKEN}) as sim:
        tenants = tenants_file(tmp_path, fetch_order=["wapi"])
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants)
        send(settings, [request_for(m)])
        await run_downloader(settings, idle_exit_s=3)
        wapi_calls = sim.calls.all("wapi", m.cdn_id)
    failed = of_type(settings, MediaDownloadFailed)
    stored = of_type(settings, MediaStored)
    assert [c.status for c in wapi_calls] == [500, 200]
    assert len(failed) == 1 and failed[0].retryable and failed[0].error_kind == "server_error"
    assert stored[0].attempt == 2 and stored[0].fetch_path == "wapi"
    assert wapi_calls[1].at >= failed[0].next_due_at.timestamp()
    assert not dead_letters(settings)


async def test_wapi_down_falls_back_to_the_cdn_in_the_same_attempt(make_settings, tmp_path) -> None:
    library = MediaLibrary(seed=4, max_size=50_000)
    m = library.make("video")
    faults = Faults()
    faults.script("wapi", m.cdn_id, [503])
    async with running_simulator(library, faults, {INSTANCE: TOKEN}) as sim:
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants_file(tmp_path))
        send(settings, [request_for(m)])
        await run_downloader(settings, idle_exit_s=1.5)
    stored = of_type(settings, MediaStored)
    assert [(e.fetch_path, e.attempt, e.sha256) for e in stored] == [("direct", 1, m.sha256_hex)]
    assert not of_type(settings, MediaDownloadFailed)


async def test_expired_cdn_media_is_dead_lettered_as_expired(make_settings, tmp_path) -> None:
    library = MediaLibrary(seed=5, max_size=50_000)
    m = library.make("image")
    async with running_simulator(library, Faults(expired={m.cdn_id}), {INSTANCE: TOKEN}) as sim:
        tenants = tenants_file(tmp_path, fetch_order=["direct"])
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants)
        req = request_for(m)
        send(settings, [req])
        await run_downloader(settings, idle_exit_s=1.5)
    [dlq] = dead_letters(settings)
    assert dlq[h.DLQ_ERROR_KIND] == "expired" and dlq[h.DLQ_MEDIA_ID] == req.media_id
    [dead] = of_type(settings, MediaDeadLettered)
    assert dead.error_kind == "expired"
    assert dead.info == req.info
    assert not objects(settings)


async def test_tampered_file_is_dead_lettered_with_the_mac_error_and_not_stored(
    make_settings, tmp_path
) -> None:
    library = MediaLibrary(seed=6, max_size=50_000)
    m = library.large(6 * 1024 * 1024, "document")  # multipart: parts must be aborted
    async with running_simulator(library, Faults(corrupt={m.cdn_id}), {INSTANCE: TOKEN}) as sim:
        tenants = tenants_file(tmp_path, fetch_order=["direct"])
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants)
        send(settings, [request_for(m)])
        await run_downloader(settings, idle_exit_s=1.5)
    [dlq] = dead_letters(settings)
    assert dlq[h.DLQ_ERROR_KIND] in ("mac_mismatch", "enc_sha256_mismatch")
    assert not objects(settings)
    assert not open_uploads(settings)


def stack(command: str) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(
        ["deploy/stack.sh", command, "s3"], cwd=REPO_ROOT, env=env, check=True, timeout=120
    )


async def test_s3_outage_makes_downloads_wait_not_fail(make_settings, tmp_path) -> None:
    library = MediaLibrary(seed=7, max_size=100_000)
    media = [library.make("image") for _ in range(3)]
    async with running_simulator(library, Faults(), {INSTANCE: TOKEN}) as sim:
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants_file(tmp_path))
        send(settings, [request_for(m) for m in media])
        await asyncio.to_thread(stack, "down")
        try:
            worker = asyncio.create_task(run_downloader(settings, idle_exit_s=2))
            await asyncio.sleep(6)
        finally:
            await asyncio.to_thread(stack, "up")
        await worker
    assert not dead_letters(settings)
    assert not of_type(settings, MediaDownloadFailed)
    assert {e.sha256 for e in of_type(settings, MediaStored)} == {m.sha256_hex for m in media}
    assert len(objects(settings)) == 3


def test_sigkill_mid_download_stores_everything_exactly_once(make_settings, tmp_path) -> None:
    library = MediaLibrary(seed=8, max_size=50_000)
    big = library.large(96 * 1024 * 1024, "video")
    small = [library.make("image") for _ in range(3)]
    # A slow CDN keeps the big upload open for seconds: at full speed it could open
    # and complete between two looks at the bucket, and there would be nothing to kill.
    faults = Faults(throttle={big.cdn_id: 16 * 1024 * 1024})
    with SimulatorThread(library, faults, {INSTANCE: TOKEN}) as sim:
        tenants = tenants_file(tmp_path, fetch_order=["direct"])
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants)
        send(settings, [request_for(big), *(request_for(m) for m in small)])
        env = stack_env()
        env.update(
            {
                "MEDIAFLOW_TOPIC_PREFIX": settings.kafka.topic_prefix,
                "MEDIAFLOW_TOPICS_FILE": str(settings.kafka.topics_file),
                "MEDIAFLOW_S3_BUCKET": settings.s3.bucket,
                "MEDIAFLOW_ALLOW_PRIVATE_ADDRESSES": "true",
                "MEDIAFLOW_WAPI_BASE_URL": sim.wapi_url,
                "MEDIAFLOW_CDN_BASE_URL": sim.cdn_url,
                "MEDIAFLOW_TENANTS_FILE": str(tenants),
                "MEDIAFLOW_S3_MULTIPART_THRESHOLD": str(5 * 1024 * 1024),
                "MEDIAFLOW_S3_PART_SIZE": str(5 * 1024 * 1024),
                "MEDIAFLOW_INSTANCE_NAME": "sigkill-test",
                "MEDIAFLOW_LOG_LEVEL": "warning",
                # the killed copy leaves no LeaveGroup: let the broker evict it quickly
                "MEDIAFLOW_KAFKA_PROP_SESSION_TIMEOUT_MS": "6000",
            }
        )
        command = [sys.executable, "-m", "mediaflow", "run", "downloader", "--idle-exit", "3"]
        first = subprocess.Popen(command, env=env, cwd=REPO_ROOT)
        try:
            deadline = time.monotonic() + 60
            while not open_uploads(settings) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert open_uploads(settings), "the big media never started uploading"
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        second = subprocess.run(command, env=env, cwd=REPO_ROOT, timeout=180)
        assert second.returncode == 0
    stored = objects(settings)
    expected = {m.sha256_hex for m in (big, *small)}
    assert sorted(o["Metadata"]["sha256"] for o in stored) == sorted(expected)
    assert not open_uploads(settings)
    assert not dead_letters(settings)
