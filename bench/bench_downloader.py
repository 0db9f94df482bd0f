"""Downloader throughput and memory.

1. Throughput, on two workloads (``n`` media of ``size_mb``, then ``large_n``
   of ``large_mb``): media served by the fake CDN over loopback (their
   ``.enc`` files written beforehand and sent with ``sendfile``, so that the
   source costs next to no CPU on either side), stored into
   S3Proxy through our path (GET .enc -> decrypt and verify -> hash -> upload)
   versus a plain baseline that copies the same bytes from the same source
   with boto3 ``upload_fileobj``. Both run with the same concurrency, in the
   same run; ``ratio`` = ours / baseline, the lower of the two workloads.
2. Memory: a child process stores one ``total_mb`` media (1 GiB by default)
   through the same path; its peak RSS (``VmHWM``) is reported.

Run: ``python -m bench.bench_downloader [n size_mb total_mb large_n large_mb]`` (or ``make bench``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench._fresh import fresh_stack
from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.events import MediaDownloadRequested, MediaInfo, MediaSource
from mediaflow.kafka.records import InRecord
from mediaflow.processors.downloader.fetchers import Fetcher
from mediaflow.processors.downloader.stage import DownloaderStage
from mediaflow.storage.objects import MediaStore
from mediaflow.storage.s3 import ensure_bucket, s3_client
from mediaflow.tenants import TenantRegistry
from mediaflow.url_guard import UrlPolicy, guarded_connector_kwargs
from simulator import MediaLibrary, SampleMedia, SimulatorThread

CONCURRENCY = 4
MIB = 1024 * 1024


def request_for(media: SampleMedia, instance_id: str = "bench") -> MediaDownloadRequested:
    """A CDN-only download request for ``media`` (no W-API tenant token needed)."""
    info = MediaInfo(
        provider="wapi",
        client_id="bench",
        instance_id=instance_id,
        message_id=uuid.uuid4().hex,
        chat_id="c",
        media_type=media.media_type,
        media_variant=media.variant,
        mimetype=media.mimetype,
        declared_length=media.size,
        file_sha256=media.file_sha256,
    )
    return MediaDownloadRequested(
        event_id=str(uuid.uuid4()),
        media_id=uuid.uuid4().hex,
        occurred_at=datetime.now(UTC),
        stage="detector",
        source_event_id="bench",
        info=info,
        source=MediaSource(
            media_key=media.media_key_b64,
            file_enc_sha256=media.file_enc_sha256,
            direct_path=media.direct_path,
        ),
    )


async def store_all(settings: Settings, requests: list[MediaDownloadRequested]) -> None:
    """Store every request through the downloader stage (fetch, decrypt, verify, upload).

    Kafka is left out on purpose: the records go straight to the stage's
    ``handle``, so the number is the download path's own.
    """
    policy = UrlPolicy.from_settings(settings.downloader)
    connector = aiohttp.TCPConnector(limit=0, **guarded_connector_kwargs(policy))
    codec = AvroCodec()
    semaphore = asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        stage = DownloaderStage(
            codec=codec,
            fetcher=Fetcher(session, policy, settings.downloader),
            store=MediaStore(s3_client(settings.s3), settings.s3),
            tenants=TenantRegistry({}),
            settings=dataclasses.replace(settings.downloader, fetch_order=("direct",)),
            media_events_topic="bench.media.events",
        )

        async def one(request: MediaDownloadRequested) -> None:
            record = InRecord(
                topic="bench",
                partition=0,
                offset=0,
                key=None,
                value=codec.encode(request),
                headers=[],
                timestamp=None,
            )
            async with semaphore:
                await stage.handle(record)

        await asyncio.gather(*(one(r) for r in requests))


def baseline(settings: Settings, cdn_url: str, media: list[SampleMedia]) -> None:
    """Copy the same .enc bytes from the same CDN into S3 with boto3 upload_fileobj."""
    client = s3_client(settings.s3)

    def one(m: SampleMedia) -> None:
        with urllib.request.urlopen(cdn_url + m.direct_path) as response:
            client.upload_fileobj(response, settings.s3.bucket, f"baseline/{m.cdn_id}")

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(one, media))


def peak_rss_mb(settings: Settings, total_mb: int) -> float:
    """Peak RSS of a child process storing one ``total_mb`` media through our path."""
    child = subprocess.run(
        [sys.executable, "-m", "bench.bench_downloader", "--rss-child", str(total_mb)],
        env={**_env(settings)},
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    return float(json.loads(child.stdout.strip().splitlines()[-1])["peak_rss_mb"])


def _env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "MEDIAFLOW_S3_BUCKET": settings.s3.bucket}


def _rss_child(total_mb: int) -> None:
    settings = Settings.from_env()
    library = MediaLibrary(seed=99)
    media = library.large(total_mb * MIB, "video")
    _ = media.file_sha256  # hash pass happens in the simulator thread's process too
    with SimulatorThread(library) as sim:
        settings = against_simulator(settings, sim)
        asyncio.run(store_all(settings, [request_for(media)]))
    with open("/proc/self/status") as status:
        hwm = next(line for line in status if line.startswith("VmHWM"))
    print(json.dumps({"peak_rss_mb": round(int(hwm.split()[1]) / 1024, 1)}))


def against_simulator(settings: Settings, sim: SimulatorThread) -> Settings:
    """``settings`` with the downloader fetching from the simulator (on loopback, so allowed)."""
    downloader = dataclasses.replace(
        settings.downloader,
        cdn_base_url=sim.cdn_url,
        wapi_base_url=sim.wapi_url,
        allow_private_addresses=True,
    )
    return dataclasses.replace(settings, downloader=downloader)


def compare(
    settings: Settings,
    sim: SimulatorThread,
    library: MediaLibrary,
    files: Path,
    n: int,
    size_mb: int,
) -> dict[str, Any]:
    """Store ``n`` media of ``size_mb`` through ours and through the boto3 baseline; time both.

    The media's ``.enc`` files are written to ``files`` first and served from there.
    """
    # Two rounds on distinct media (ours would find round one's objects already
    # stored), in opposite orders, so neither side always runs on a colder machine.
    rounds = [[library.large(size_mb * MIB, "video") for _ in range(n // 2)] for _ in range(2)]
    warm_up = [library.large(size_mb * MIB, "video") for _ in range(2)]
    for m in rounds[0] + rounds[1] + warm_up:
        _ = m.file_sha256  # precompute the hashes outside the timed sections
        # ...and the .enc files: served from disk, the source costs neither side CPU.
        library.materialize(m, files)

    def time_ours(media: list[SampleMedia]) -> float:
        started = time.perf_counter()
        asyncio.run(store_all(settings, [request_for(m) for m in media]))
        return time.perf_counter() - started

    def time_baseline(media: list[SampleMedia]) -> float:
        started = time.perf_counter()
        baseline(settings, sim.cdn_url, media)
        return time.perf_counter() - started

    # Untimed: the S3 server's JIT and both sides' connection pools warm up first.
    time_ours(warm_up[:1])
    time_baseline(warm_up[1:])
    ours = time_ours(rounds[0])
    base = time_baseline(rounds[0]) + time_baseline(rounds[1])
    ours += time_ours(rounds[1])
    n = 2 * (n // 2)
    total_mb = n * size_mb
    return {
        "media": n,
        "media_mb": size_mb,
        "ours_mb_s": round(total_mb / ours, 1),
        "ours_media_s": round(n / ours, 2),
        "boto3_mb_s": round(total_mb / base, 1),
        "boto3_media_s": round(n / base, 2),
        "ratio": round(base / ours, 3),
    }


def run(
    settings: Settings,
    n: int = 40,
    size_mb: int = 16,
    total_mb: int = 1024,
    large_n: int = 8,
    large_mb: int = 64,
    quick: bool = False,
) -> dict[str, Any]:
    """Measure ours vs the boto3 baseline on two workloads, and peak RSS storing ``total_mb``.

    The workloads: ``n`` media of ``size_mb`` (WhatsApp's usual ceiling for
    photos, video and voice: one PUT each) and ``large_n`` of ``large_mb``
    (documents: multipart on both sides). The headline ``ratio`` is the lower.
    """
    del quick  # sizes already say it
    ensure_bucket(s3_client(settings.s3), settings.s3)
    library = MediaLibrary(seed=42)
    with SimulatorThread(library) as sim, tempfile.TemporaryDirectory() as folder:
        settings = against_simulator(settings, sim)
        files = Path(folder)
        usual = compare(settings, sim, library, files, n, size_mb)
        for written in files.iterdir():  # the page cache holds one workload at a time
            written.unlink()
        large = compare(settings, sim, library, files, large_n, large_mb)
    rss = peak_rss_mb(settings, total_mb)
    return {
        "ratio": min(usual["ratio"], large["ratio"]),
        "usual": usual,
        "large": large,
        "rss_file_mb": total_mb,
        "peak_rss_mb": rss,
        "concurrency": CONCURRENCY,
        "multipart_threshold_mb": settings.s3.multipart_threshold / MIB,
    }


def main(argv: list[str]) -> int:
    """Entry point; ``--rss-child MB`` is the memory probe's child mode."""
    if argv[:1] == ["--rss-child"]:
        _rss_child(int(argv[1]))
        return 0
    sizes = [int(a) for a in argv[:3]]
    with fresh_stack(Settings.from_env()) as settings:
        print(json.dumps(run(settings, *sizes), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
