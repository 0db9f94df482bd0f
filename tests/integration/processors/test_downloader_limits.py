"""Size limits on the real stack: oversized media, declared or actual, are
dead-lettered as ``too_large`` and leave nothing in the bucket; a burst of
large files keeps the downloader's memory bounded."""

from __future__ import annotations

import dataclasses

import pytest

from bench.bench_memory import downloader_burst
from mediaflow.events import MediaDeadLettered, MediaStored
from mediaflow.kafka import headers as h
from simulator import Faults, MediaLibrary, running_simulator
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

pytestmark = pytest.mark.integration

PART = 5 * 1024 * 1024


async def test_a_declared_length_over_the_cap_is_dead_lettered_without_any_download(
    make_settings, tmp_path
) -> None:
    library = MediaLibrary(seed=31, max_size=50_000)
    m = library.make("video")
    async with running_simulator(library, Faults(), {INSTANCE: TOKEN}) as sim:
        settings = settings_for(
            make_settings,
            sim.wapi_url,
            sim.cdn_url,
            tenants_file(tmp_path),
            max_media_bytes=m.size - 1,
        )
        req = request_for(m)
        send(settings, [req])
        await run_downloader(settings, idle_exit_s=1.5)
        assert sim.calls.all() == []
    [dlq] = dead_letters(settings)
    assert dlq[h.DLQ_ERROR_KIND] == "too_large" and dlq[h.DLQ_MEDIA_ID] == req.media_id
    [dead] = of_type(settings, MediaDeadLettered)
    assert dead.error_kind == "too_large" and f"limit of {m.size - 1} bytes" in dead.error_message
    assert not objects(settings)


@pytest.mark.parametrize("fetch_order", [["wapi"], ["direct"]])
async def test_a_body_larger_than_declared_is_cut_off_and_its_upload_aborted(
    make_settings, tmp_path, fetch_order
) -> None:
    library = MediaLibrary(seed=32)
    m = library.large(3 * PART, "video")
    async with running_simulator(library, Faults(), {INSTANCE: TOKEN}) as sim:
        tenants = tenants_file(tmp_path, fetch_order=fetch_order)
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants)
        real = request_for(m)
        # The provider claims half the real size: past declared + margin the
        # stream must stop, after at least one part already went to S3.
        lying = dataclasses.replace(
            real, info=dataclasses.replace(real.info, declared_length=m.size // 2)
        )
        send(settings, [lying])
        await run_downloader(settings, idle_exit_s=1.5)
    [dlq] = dead_letters(settings)
    assert dlq[h.DLQ_ERROR_KIND] == "too_large" and dlq[h.DLQ_MEDIA_ID] == lying.media_id
    assert "exceeds the limit" in dlq[h.DLQ_ERROR_MESSAGE]
    assert not of_type(settings, MediaStored)
    assert not objects(settings)
    assert not open_uploads(settings)


def test_a_burst_of_large_files_keeps_the_downloader_process_memory_bounded(make_settings) -> None:
    # Generous on purpose (the measured number belongs to bench/bench_memory.py):
    # it catches a downloader that buffers whole files, not small regressions.
    burst = downloader_burst(make_settings(), files=2, size_mb=64, concurrency=2)
    assert burst.stored == 2
    assert burst.peak_rss_mb < 300
