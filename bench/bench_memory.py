"""Downloader memory under a burst of large files.

A real downloader process (``mediaflow run downloader --idle-exit``) consumes
``files`` download requests of ``size_mb`` each from Kafka, with
``concurrency`` downloads at once, fetching from the fake CDN (simulator,
in this process) and storing into S3Proxy. Its peak RSS (``VmHWM`` from
``/proc/<pid>/status``, read until it exits) is the number reported: the
streaming path must hold a few parts per download, never a whole file.

Run: ``python -m bench.bench_memory [files size_mb concurrency]`` (or ``make bench``).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench._fresh import fresh_stack
from bench.bench_downloader import against_simulator, request_for
from mediaflow.codec import AvroCodec
from mediaflow.config import REPO_ROOT, Settings
from mediaflow.events import MediaDownloadRequested
from mediaflow.kafka import clients
from mediaflow.kafka.topics import load_layout
from mediaflow.process import settings_env
from mediaflow.storage.s3 import s3_client
from simulator import MediaLibrary, SimulatorThread

MIB = 1024 * 1024
INSTANCE = "bench-memory"
TENANTS = f'[tenants."{INSTANCE}"]\nclient_id = "bench"\nprovider = "wapi"\n'


@dataclasses.dataclass(frozen=True, slots=True)
class Burst:
    """What one burst measured: the process's peak RSS and the objects it stored."""

    peak_rss_mb: float
    stored: int
    seconds: float


def _produce(settings: Settings, requests: list[MediaDownloadRequested]) -> None:
    codec = AvroCodec()
    producer = clients.producer(settings.kafka)
    topic = load_layout(settings.kafka).download_requests
    for request in requests:
        producer.produce(topic, value=codec.encode(request), key=request.media_id)
    if producer.flush(30):
        raise RuntimeError("download requests not fully produced")


def _peak_rss_mb(process: subprocess.Popen[bytes], poll_s: float = 0.1) -> float:
    """Poll ``VmHWM`` (a high-water mark) until the process exits; the last reading is the peak."""
    peak_kb = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM"))
            peak_kb = max(peak_kb, int(line.split()[1]))
        except (OSError, StopIteration):
            pass  # exiting: the last reading stands
        time.sleep(poll_s)
    return round(peak_kb / 1024, 1)


def downloader_burst(
    settings: Settings, *, files: int, size_mb: int, concurrency: int, timeout_s: float = 900
) -> Burst:
    """Store a burst of ``files`` media of ``size_mb`` through a downloader process.

    Args:
        settings: topics (created) and bucket (created) to use.
        files: how many media.
        size_mb: size of each.
        concurrency: the downloader's ``MEDIAFLOW_DOWNLOAD_CONCURRENCY``.
        timeout_s: give up on the process after this long.

    Raises:
        RuntimeError: the downloader failed or the requests could not be produced.
    """
    library = MediaLibrary(seed=77)
    media = [library.large(size_mb * MIB, "video") for _ in range(files)]
    requests = [request_for(m, INSTANCE) for m in media]  # hashes computed here, before the process
    with SimulatorThread(library) as sim, tempfile.TemporaryDirectory() as tmp:
        tenants = Path(tmp) / "tenants.toml"
        tenants.write_text(TENANTS)
        fetching = against_simulator(settings, sim)
        child = dataclasses.replace(
            fetching,
            downloader=dataclasses.replace(
                fetching.downloader, fetch_order=("direct",), concurrency=concurrency
            ),
            tenants_file=tenants,
            instance_name=f"bench-memory-{uuid.uuid4().hex[:6]}",
            log_level="warning",
        )
        _produce(child, requests)
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "mediaflow", "run", "downloader", "--idle-exit", "3"],
            env=settings_env(child),
            cwd=REPO_ROOT,
        )
        try:
            peak = _peak_rss_mb(process)
            if process.wait(timeout_s) != 0:
                raise RuntimeError(f"downloader exited {process.returncode}")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        seconds = time.perf_counter() - started
    listing = s3_client(settings.s3).list_objects_v2(Bucket=settings.s3.bucket)
    return Burst(peak, listing.get("KeyCount", 0), round(seconds, 1))


def run(
    settings: Settings, files: int = 4, size_mb: int = 200, concurrency: int = 4
) -> dict[str, Any]:
    """Peak RSS of the downloader storing ``files`` x ``size_mb`` at ``concurrency``."""
    burst = downloader_burst(settings, files=files, size_mb=size_mb, concurrency=concurrency)
    return {
        "files": files,
        "size_mb": size_mb,
        "concurrency": concurrency,
        "stored": burst.stored,
        "peak_rss_mb": burst.peak_rss_mb,
        "burst_s": burst.seconds,
    }


def main(argv: list[str]) -> int:
    """Entry point: ``[files size_mb concurrency]`` on fresh topics and bucket."""
    with fresh_stack(Settings.from_env()) as settings:
        print(json.dumps(run(settings, *(int(a) for a in argv[:3])), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
