"""The W-API token and the media key never follow a redirect to another origin.

The fake W-API (simulator, 127.0.0.1) answers download-media with a redirect
to a trap: another port of the same address, so the allowlist and the address
guard both let it through and only the origin rule stands between the
credentials and the trap.
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from mediaflow.events import MediaDeadLettered, MediaStored
from mediaflow.ops import diagnose
from mediaflow.tenants import TenantRegistry
from simulator import Faults, MediaLibrary, running_simulator
from tests.support.downloader import (
    INSTANCE,
    TOKEN,
    dead_letters,
    of_type,
    request_for,
    run_downloader,
    send,
    settings_for,
    tenants_file,
)
from tests.support.trap import serving_trap

pytestmark = pytest.mark.integration

REDIRECTS = (301, 302, 303, 307, 308)


async def test_wapi_redirects_to_another_origin_never_carry_the_token_or_the_media_key(
    make_settings, tmp_path
) -> None:
    library = MediaLibrary(seed=61, max_size=20_000)
    media = [library.make("image") for _ in REDIRECTS]
    async with serving_trap() as (trap, trap_url):
        faults = Faults(redirect_to=trap_url)
        for m, status in zip(media, REDIRECTS, strict=True):
            faults.script("wapi", m.cdn_id, [status])
        async with running_simulator(library, faults, {INSTANCE: TOKEN}) as sim:
            tenants = tenants_file(tmp_path, fetch_order=["wapi"])
            settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants)
            requests = [request_for(m) for m in media]
            send(settings, requests)
            await run_downloader(settings, idle_exit_s=1.5)

    assert trap.leaked([TOKEN, *(m.media_key_b64 for m in media)]) == []
    dead = {e.media_id: e.error_kind for e in of_type(settings, MediaDeadLettered)}
    assert dead == {r.media_id: "blocked_url" for r in requests}
    assert len(dead_letters(settings)) == len(media)


async def test_a_wapi_redirect_within_its_own_origin_is_followed(make_settings, tmp_path) -> None:
    library = MediaLibrary(seed=62, max_size=20_000)
    m = library.make("image")
    faults = Faults()
    async with running_simulator(library, faults, {INSTANCE: TOKEN}) as sim:
        faults.redirect_to = sim.wapi_url
        faults.script("wapi", m.cdn_id, [307])
        tenants = tenants_file(tmp_path, fetch_order=["wapi"])
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants)
        send(settings, [request_for(m)])
        await run_downloader(settings, idle_exit_s=1.5)
        answers = [c.outcome for c in sim.calls.all("wapi", m.cdn_id)]

    assert answers == ["redirect", "ok"]
    [stored] = of_type(settings, MediaStored)
    assert (stored.fetch_path, stored.sha256) == ("wapi", m.sha256_hex)


def redirecting_wapi(location: str, status: int) -> web.Application:
    async def download_media(request: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Location": location + request.path_qs})

    app = web.Application()
    app.router.add_post("/v1/message/download-media", download_media)
    return app


@pytest.mark.parametrize("status", [302, 307])
async def test_diagnose_never_sends_the_token_to_another_origin(
    make_settings, tmp_path, status: int
) -> None:
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "tenants.toml").write_text(
        f'[tenants."{INSTANCE}"]\nclient_id = "1"\nwapi_token_file = "{tmp_path / "token"}"\n'
    )
    registry = TenantRegistry.load(tmp_path / "tenants.toml", environ={})
    async with serving_trap() as (trap, trap_url):
        server = TestServer(redirecting_wapi(trap_url, status), host="127.0.0.1")
        await server.start_server()
        try:
            wapi = str(server.make_url("")).rstrip("/")
            settings = make_settings(create=False, wapi_base_url=wapi)
            [check] = await asyncio.to_thread(diagnose.check_tokens, settings, registry, 5)
        finally:
            await server.close()

    assert trap.leaked([TOKEN]) == []
    assert not check.ok and "another origin" in check.detail
    assert TOKEN not in check.line()
