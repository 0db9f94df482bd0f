"""SSRF end to end: the downloader stage on real Kafka dead-letters internal targets as blocked_url.

Production-like settings: ``allow_private_addresses=false`` and an allowlist
that even names the internal hosts (the worst case: only the address guard
stands). The fake W-API and the origin sit on 127.0.0.1, the one address the
policy trusts (see :mod:`tests.security.ssrf_support`); the W-API hands out
``fileLink`` URLs on 169.254.169.254, and a plain link redirects to a trap on
127.0.0.2 that counts requests.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import quote

import pytest

from mediaflow.events import MediaDeadLettered, MediaSource, MediaStored
from mediaflow.kafka import headers as h
from simulator import Faults, MediaLibrary, running_simulator
from tests.security.ssrf_support import (
    ORIGIN_ADDRESS,
    TRAP_ADDRESS,
    Origin,
    TrustOnePolicy,
    serving,
)
from tests.support.downloader import (
    INSTANCE,
    TOKEN,
    dead_letters,
    of_type,
    request_for,
    run_downloader,
    send,
    tenants_file,
)

pytestmark = pytest.mark.integration

METADATA = "169.254.169.254"


async def test_internal_file_links_and_redirects_are_dead_lettered_as_blocked_url(
    make_settings, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr("mediaflow.processors.downloader.stage.UrlPolicy", TrustOnePolicy)
    library = MediaLibrary(seed=21, max_size=20_000)
    via_wapi, via_link = library.make("image"), library.make("image")
    origin, trap = Origin(), Origin()
    async with (
        running_simulator(
            library, Faults(), {INSTANCE: TOKEN}, public_base_url=f"http://{METADATA}"
        ) as sim,
        serving(origin, ORIGIN_ADDRESS) as origin_url,
        serving(trap, TRAP_ADDRESS) as trap_url,
    ):
        settings = make_settings(
            wapi_base_url=sim.wapi_url,
            cdn_base_url=sim.cdn_url,
            tenants_file=str(tenants_file(tmp_path, fetch_order=["wapi"])),
            allow_private_addresses="false",
            allowed_hosts=f"{ORIGIN_ADDRESS},{TRAP_ADDRESS},{METADATA}",
            read_timeout_s=2,
        )
        wapi_request = request_for(via_wapi)
        redirect = f"{origin_url}/redirect?to={quote(trap_url + '/file', safe='')}"
        link_request = dataclasses.replace(request_for(via_link), source=MediaSource(url=redirect))
        send(settings, [wapi_request, link_request])
        await run_downloader(settings, idle_exit_s=2)

    dead = {e.media_id: e.error_kind for e in of_type(settings, MediaDeadLettered)}
    assert dead == {wapi_request.media_id: "blocked_url", link_request.media_id: "blocked_url"}
    kinds = {d[h.DLQ_MEDIA_ID]: d[h.DLQ_ERROR_KIND] for d in dead_letters(settings)}
    assert kinds == dead
    assert not of_type(settings, MediaStored)
    assert trap.hits == []
    assert [c.target for c in sim.calls.all("wapi", via_wapi.cdn_id)] == ["wapi"]
