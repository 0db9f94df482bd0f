"""The fake W-API and CDN over loopback HTTP, as a downloader sees them."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request

import aiohttp
import pytest

from mediaflow.events import MediaType
from mediaflow.whatsapp import MediaDecryptor, decode_b64_field
from simulator import Faults, MediaLibrary, SimulatorThread, running_simulator

pytestmark = pytest.mark.integration

INSTANCE = "3B6XIW-ZTS923-GEAY6V"
TOKEN = "test-token"


@pytest.fixture
def library() -> MediaLibrary:
    return MediaLibrary(seed=7, max_size=50_000)


@contextlib.asynccontextmanager
async def _serving(library, faults=None, tokens=None):
    async with (
        running_simulator(library, faults, tokens) as sim,
        aiohttp.ClientSession() as session,
    ):
        yield sim, session


def _request(media) -> dict[str, str]:
    return {
        "mediaKey": media.media_key_b64,
        "directPath": media.direct_path,
        "type": media.media_type.value,
        "mimetype": media.mimetype,
    }


async def _ask_wapi(session, sim, media, token=TOKEN):
    return await session.post(
        f"{sim.wapi_url}/v1/message/download-media",
        params={"instanceId": INSTANCE},
        json=_request(media),
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_cdn_serves_an_enc_file_that_decrypts_and_verifies(library):
    media = library.make(MediaType.VIDEO, size=200_003)
    async with (
        _serving(library) as (sim, session),
        session.get(f"{sim.cdn_url}{media.direct_path}") as response,
    ):
        assert response.content_length == media.enc_length
        decryptor = MediaDecryptor(
            media.media_key,
            media.media_type,
            file_enc_sha256=decode_b64_field(media.file_enc_sha256, "fileEncSha256"),
            file_sha256=decode_b64_field(media.file_sha256, "fileSha256"),
            file_length=media.size,
        )
        plaintext = bytearray()
        async for chunk in response.content.iter_chunked(16_384):
            plaintext += decryptor.update(chunk)
        plaintext += decryptor.finalize()

    assert bytes(plaintext) == media.plaintext()
    assert sim.calls.count("cdn", media.cdn_id) == 1


async def test_a_materialized_media_is_served_from_its_file_and_faults_still_apply(
    library, tmp_path
):
    media = library.make(MediaType.VIDEO, size=200_003)
    corrupt = library.make(MediaType.IMAGE, size=5_000)
    written = library.materialize(media, tmp_path)
    library.materialize(corrupt, tmp_path)
    async with _serving(library, Faults(corrupt={corrupt.cdn_id})) as (sim, session):
        served = await (await session.get(f"{sim.cdn_url}{media.direct_path}")).read()
        tampered = await (await session.get(f"{sim.cdn_url}{corrupt.direct_path}")).read()

    assert served == written.read_bytes() == media.enc()
    assert len(tampered) == corrupt.enc_length and tampered != corrupt.enc()


async def test_cdn_answers_410_for_expired_media(library):
    media = library.make(MediaType.IMAGE)
    async with _serving(library, Faults(expired={media.cdn_id})) as (sim, session):
        response = await session.get(f"{sim.cdn_url}{media.direct_path}")

    assert response.status == 410


async def test_cdn_answers_404_for_an_unknown_path(library):
    async with running_simulator(library) as sim, aiohttp.ClientSession() as session:
        response = await session.get(f"{sim.cdn_url}/v/t62.7118-24/1_n.enc?ccb=11-4")

    assert response.status == 404


async def test_corrupt_media_fails_the_enc_sha256_check(library):
    media = library.make(MediaType.IMAGE, size=5_000)
    async with _serving(library, Faults(corrupt={media.cdn_id})) as (sim, session):
        body = await (await session.get(f"{sim.cdn_url}{media.direct_path}")).read()

    assert len(body) == media.enc_length
    assert body != media.enc()


async def test_truncated_media_breaks_the_connection_midway(library):
    media = library.make(MediaType.VIDEO, size=300_000)
    async with _serving(library, Faults(truncate={media.cdn_id})) as (sim, session):
        response = await session.get(f"{sim.cdn_url}{media.direct_path}")
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


async def test_throttled_media_streams_no_faster_than_its_rate(library):
    media = library.make(MediaType.VIDEO, size=300_000)
    rate = 1_000_000  # bytes per second: the body takes at least 0.3 s
    async with _serving(library, Faults(throttle={media.cdn_id: rate})) as (sim, session):
        started = asyncio.get_running_loop().time()
        body = await (await session.get(f"{sim.cdn_url}{media.direct_path}")).read()
        took = asyncio.get_running_loop().time() - started

    assert body == media.enc()
    assert took >= media.enc_length / rate * 0.9


async def test_wapi_returns_a_file_link_that_serves_the_plaintext(library):
    media = library.make(MediaType.DOCUMENT, size=12_345)
    async with _serving(library, tokens={INSTANCE: TOKEN}) as (sim, session):
        answer = await (await _ask_wapi(session, sim, media)).json()
        body = await (await session.get(answer["fileLink"])).read()

    assert answer["error"] is False
    assert body == media.plaintext()


async def test_wapi_rejects_a_wrong_token_with_401(library):
    media = library.make(MediaType.IMAGE)
    async with _serving(library, tokens={INSTANCE: TOKEN}) as (sim, session):
        response = await _ask_wapi(session, sim, media, token="wrong")
        answer = await response.json()

    assert response.status == 401
    assert answer["error"] is True


async def test_wapi_answers_an_error_body_for_unknown_media(library):
    unknown = MediaLibrary(seed=999).make(MediaType.IMAGE, size=500)
    async with _serving(library, tokens={INSTANCE: TOKEN}) as (sim, session):
        answer = await (await _ask_wapi(session, sim, unknown)).json()

    assert answer["error"] is True
    assert answer["message"]


async def test_wapi_scripted_500_then_success(library):
    media = library.make(MediaType.AUDIO, "ptt")
    faults = Faults()
    faults.script("wapi", media.cdn_id, [500, 200])
    async with _serving(library, faults, {INSTANCE: TOKEN}) as (sim, session):
        first = await _ask_wapi(session, sim, media)
        second = await _ask_wapi(session, sim, media)
        answer = await second.json()

    assert (first.status, second.status) == (500, 200)
    assert answer["error"] is False
    assert sim.calls.statuses("wapi", media.cdn_id) == [500, 200]


async def test_429_carries_retry_after(library):
    media = library.make(MediaType.IMAGE)
    faults = Faults(retry_after_s=3)
    faults.script("cdn", media.cdn_id, [429])
    async with running_simulator(library, faults) as sim, aiohttp.ClientSession() as session:
        response = await session.get(f"{sim.cdn_url}{media.direct_path}")

    assert response.status == 429
    assert response.headers["Retry-After"] == "3"


async def test_a_hostile_retry_after_is_sent_as_it_is_with_a_503(library):
    media = library.make(MediaType.IMAGE)
    faults = Faults(retry_after_values=("1e12",))
    faults.script("cdn", media.cdn_id, [503])
    async with running_simulator(library, faults) as sim, aiohttp.ClientSession() as session:
        response = await session.get(f"{sim.cdn_url}{media.direct_path}")

    assert response.status == 503
    assert response.headers["Retry-After"] == "1e12"


async def test_wapi_error_message_with_a_lone_surrogate_is_valid_json(library):
    media = library.make(MediaType.IMAGE)
    faults = Faults(provider_error_rate=1.0, provider_error_message="quota \ud800 exceeded")
    async with _serving(library, faults, {INSTANCE: TOKEN}) as (sim, session):
        response = await _ask_wapi(session, sim, media)
        text = await response.text()
        answer = await response.json()

    assert '"quota \\ud800 exceeded"' in text  # a JSON escape: the body is valid UTF-8
    assert answer == {"error": True, "message": "quota \ud800 exceeded"}


async def test_hang_holds_the_request_until_the_client_times_out(library):
    media = library.make(MediaType.IMAGE)
    faults = Faults(hang_rate=1.0, hang_s=60)
    async with running_simulator(library, faults) as sim:
        timeout = aiohttp.ClientTimeout(total=0.3)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            with pytest.raises(asyncio.TimeoutError):
                await session.get(f"{sim.cdn_url}{media.direct_path}")

    assert [c.outcome for c in sim.calls.all("cdn")] == ["hang"]


def test_simulator_thread_serves_plain_sync_callers(library):
    media = library.make(MediaType.STICKER, size=3_000)
    with (
        SimulatorThread(library) as sim,
        urllib.request.urlopen(f"{sim.cdn_url}{media.direct_path}", timeout=5) as response,
    ):
        body = response.read()

    assert body == media.enc()
