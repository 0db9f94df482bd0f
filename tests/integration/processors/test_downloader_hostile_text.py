"""A provider's error text that UTF-8 cannot hold, end to end through the real downloader.

W-API answers ``{"error": true, "message": "quota \\ud800 exceeded"}``: JSON allows
the escape, and it decodes to a lone surrogate. The failure must end as an
ordinary dead letter (or retry), with U+FFFD for the surrogate, and the
records behind it on the partition must be stored and committed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from mediaflow.events import MediaDeadLettered, MediaDownloadFailed, MediaStored
from mediaflow.kafka.topics import load_layout
from simulator import Faults, MediaLibrary, SampleMedia, running_simulator
from tests.support.downloader import (
    CODEC,
    INSTANCE,
    TOKEN,
    events,
    request_for,
    run_downloader,
    settings_for,
    tenants_file,
)
from tests.support.kafka import produce, read_all

pytestmark = pytest.mark.integration

SURROGATE_ERROR = b'{"error": true, "message": "quota \\ud800 exceeded \\u0000\\u001b[2J"}'


@asynccontextmanager
async def wapi_with_a_surrogate_error(
    bad: SampleMedia, files_base: str, good: list[SampleMedia]
) -> AsyncIterator[str]:
    """A W-API that fails ``bad`` with SURROGATE_ERROR and links the others to ``files_base``."""
    links = {m.direct_path: f"{files_base}/files/{m.cdn_id}" for m in good}

    async def download_media(request: web.Request) -> web.Response:
        asked = await request.json()
        if asked["directPath"] == bad.direct_path:
            return web.Response(body=SURROGATE_ERROR, content_type="application/json")
        return web.json_response({"error": False, "fileLink": links[asked["directPath"]]})

    app = web.Application()
    app.router.add_post("/v1/message/download-media", download_media)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_surrogate_in_a_provider_error_ends_as_a_dead_letter_and_the_partition_moves_on(
    make_settings, tmp_path
) -> None:
    library = MediaLibrary(seed=24, max_size=20_000)
    bad, *good = [library.make("image") for _ in range(4)]
    # Nothing else can save it either, whichever path the downloader falls back to.
    faults = Faults(expired={bad.cdn_id})
    async with (
        running_simulator(library, faults, {INSTANCE: TOKEN}) as sim,
        wapi_with_a_surrogate_error(bad, sim.wapi_url, good) as wapi,
    ):
        settings = settings_for(make_settings, wapi, sim.cdn_url, tenants_file(tmp_path))
        requests = [request_for(m) for m in (bad, *good)]
        layout = load_layout(settings.kafka)
        # One key: one partition, the bad media first.
        produce(settings, layout.download_requests, [(b"one", CODEC.encode(r)) for r in requests])
        await asyncio.wait_for(run_downloader(settings, idle_exit_s=2), timeout=120)

        # Everything was committed: a second run finds nothing left to do.
        before = len(read_all(settings, layout.media_events))
        await asyncio.wait_for(run_downloader(settings, idle_exit_s=1), timeout=120)
        assert len(read_all(settings, layout.media_events)) == before

    all_events = events(settings)
    stored = {e.media_id for e in all_events if isinstance(e, MediaStored)}
    assert stored == {r.media_id for r in requests[1:]}
    bad_id = requests[0].media_id
    outcomes = [
        e
        for e in all_events
        if isinstance(e, MediaDeadLettered | MediaDownloadFailed) and e.media_id == bad_id
    ]
    assert outcomes and isinstance(outcomes[-1], MediaDeadLettered)
    dead = read_all(settings, layout.dead_letters)
    assert len(dead) == 1
    texts = [v.decode("utf-8") for _, v in dead[0].headers()] + [e.error_message for e in outcomes]
    assert not any("\\ud800" in t or "\ud800" in t for t in texts)
    assert all("quota \ufffd exceeded" in t for t in texts if "quota" in t)
    assert json.dumps(texts)  # plain, encodable text all the way
