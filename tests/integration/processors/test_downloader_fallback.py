"""Every W-API failure falls back to the WhatsApp CDN before it counts; the CDN saying
"gone" after a transient W-API failure is retried (real Kafka and S3, the simulator's faults)."""

from __future__ import annotations

import pytest

from mediaflow.events import MediaDeadLettered, MediaDownloadFailed, MediaStored
from mediaflow.kafka import headers as h
from simulator import Faults, MediaLibrary, running_simulator
from tests.support.downloader import (
    INSTANCE,
    TOKEN,
    dead_letters,
    objects,
    of_type,
    request_for,
    run_downloader,
    send,
    settings_for,
    tenants_file,
)
from tests.support.trap import serving_trap

pytestmark = pytest.mark.integration

W_API_FAILURES: dict[str, tuple[str, list[int | str]]] = {
    "W-API 401": ("wapi", [401]),
    "W-API 403": ("wapi", [403]),
    'W-API "error": true': ("wapi", ["error"]),
    "W-API answer without fileLink": ("wapi", ["no_link"]),
    "W-API redirect to another origin": ("wapi", [307]),
    "fileLink 404": ("files", [404]),
    "fileLink 410": ("files", [410]),
    "fileLink bytes fail verification": ("files", ["corrupt"]),
}


async def test_every_wapi_failure_falls_back_to_the_cdn_in_the_same_attempt(
    make_settings, tmp_path
) -> None:
    library = MediaLibrary(seed=71, max_size=20_000)
    media = {name: library.make("image") for name in W_API_FAILURES}
    async with serving_trap() as (trap, trap_url):
        faults = Faults(redirect_to=trap_url)
        for name, (target, steps) in W_API_FAILURES.items():
            faults.script(target, media[name].cdn_id, steps)
        async with running_simulator(library, faults, {INSTANCE: TOKEN}) as sim:
            settings = settings_for(
                make_settings, sim.wapi_url, sim.cdn_url, tenants_file(tmp_path)
            )
            requests = {name: request_for(m) for name, m in media.items()}
            send(settings, list(requests.values()))
            await run_downloader(settings, idle_exit_s=1.5)
            faulted = {
                name: [c.outcome for c in sim.calls.all(target, media[name].cdn_id)]
                for name, (target, _) in W_API_FAILURES.items()
            }

    stored = {e.media_id: e for e in of_type(settings, MediaStored)}
    outcome = {
        name: (stored[r.media_id].fetch_path, stored[r.media_id].attempt)
        if r.media_id in stored
        else "not stored"
        for name, r in requests.items()
    }
    assert outcome == dict.fromkeys(W_API_FAILURES, ("direct", 1))
    assert all(answers and answers[0] != "ok" for answers in faulted.values()), faulted
    assert {stored[r.media_id].sha256 for r in requests.values()} == {
        m.sha256_hex for m in media.values()
    }
    assert len(objects(settings)) == len(media)
    assert not dead_letters(settings) and not of_type(settings, MediaDownloadFailed)
    assert trap.leaked([TOKEN, *(m.media_key_b64 for m in media.values())]) == []


async def test_cdn_gone_after_a_transient_wapi_failure_is_retried_and_then_stored(
    make_settings, tmp_path
) -> None:
    library = MediaLibrary(seed=72, max_size=20_000)
    m = library.make("image")
    faults = Faults()
    faults.script("wapi", m.cdn_id, [503, 200])
    faults.script("cdn", m.cdn_id, [404])
    async with running_simulator(library, faults, {INSTANCE: TOKEN}) as sim:
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants_file(tmp_path))
        send(settings, [request_for(m)])
        await run_downloader(settings, idle_exit_s=3)

    [failed] = of_type(settings, MediaDownloadFailed)
    assert failed.retryable and failed.error_kind == "server_error"
    assert "direct: WhatsApp CDN answered 404" in failed.error_message
    [stored] = of_type(settings, MediaStored)
    assert (stored.fetch_path, stored.attempt, stored.sha256) == ("wapi", 2, m.sha256_hex)
    assert not dead_letters(settings)


async def test_cdn_gone_is_final_only_when_the_last_tier_fails_too(make_settings, tmp_path) -> None:
    library = MediaLibrary(seed=73, max_size=20_000)
    m = library.make("image")
    faults = Faults()
    faults.script("wapi", m.cdn_id, [503, 503, 503])
    faults.script("cdn", m.cdn_id, [410, 410, 410])
    async with running_simulator(library, faults, {INSTANCE: TOKEN}) as sim:
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants_file(tmp_path))
        request = request_for(m)
        send(settings, [request])
        await run_downloader(settings, idle_exit_s=4)
        cdn_answers = [c.status for c in sim.calls.all("cdn", m.cdn_id)]

    assert cdn_answers == [410, 410, 410]  # one per attempt: the first and each of two tiers
    failed = of_type(settings, MediaDownloadFailed)
    assert [(f.attempt, f.error_kind) for f in failed] == [(1, "server_error"), (2, "server_error")]
    [dead] = of_type(settings, MediaDeadLettered)
    assert (dead.error_kind, dead.attempt) == ("expired", 3)
    [dlq] = dead_letters(settings)
    assert dlq[h.DLQ_ERROR_KIND] == "expired" and dlq[h.DLQ_MEDIA_ID] == request.media_id
    assert not of_type(settings, MediaStored)
