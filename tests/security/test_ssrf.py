"""SSRF: media links and redirects into internal networks are refused before any connection.

Everything runs over loopback: the fake origin on 127.0.0.1 (the one address
the policy trusts), a trap server on 127.0.0.2 that must never be asked, and a
stub resolver that maps hostile names to internal addresses without any DNS.
Literal private addresses (169.254.169.254, 10/8...) are refused by the URL
check itself, so no packet is ever addressed to them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import quote

import aiohttp
import pytest

from mediaflow.config import DownloaderSettings
from mediaflow.errors import BlockedUrl, ErrorKind
from mediaflow.events import MediaDownloadRequested, MediaInfo, MediaSource, MediaType
from mediaflow.processors.downloader.fetchers import Fetcher
from mediaflow.url_guard import GuardedResolver
from tests.security.ssrf_support import (
    INTERNAL_NAMES,
    ORIGIN_ADDRESS,
    TRAP_ADDRESS,
    Origin,
    StubResolver,
    production_policy,
    serving,
)

LITERAL_TARGETS = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://10.0.0.1/media.jpg",
    "http://10.255.255.254/media.jpg",
    "http://172.16.0.1/media.jpg",
    "http://172.31.255.254/media.jpg",
    "http://192.168.0.1/media.jpg",
    "http://192.168.255.254/media.jpg",
    "http://[::1]/media.jpg",
    "http://[::ffff:169.254.169.254]/",
    "http://0.0.0.0/",
]
SCHEMES = ["file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://127.0.0.1/x", "data:,hello"]


def link_request(url: str) -> MediaDownloadRequested:
    """A plain-link media (Z-API style: no media key) pointing at ``url``."""
    return MediaDownloadRequested(
        event_id="e",
        media_id="m",
        occurred_at=datetime.now(UTC),
        stage="detector",
        source_event_id="s",
        info=MediaInfo(
            provider="zapi",
            client_id="1",
            instance_id="I",
            message_id="M",
            chat_id="C",
            media_type=MediaType.IMAGE,
        ),
        source=MediaSource(url=url),
    )


@pytest.fixture
async def hosts() -> AsyncIterator[tuple[Origin, str, Origin, str]]:
    """The trusted origin and the trap, both on loopback."""
    origin, trap = Origin(), Origin()
    async with (
        serving(origin, ORIGIN_ADDRESS) as origin_url,
        serving(trap, TRAP_ADDRESS) as trap_url,
    ):
        yield origin, origin_url, trap, trap_url


async def fetch(url: str) -> bytes:
    """Fetch ``url`` as the downloader would, under the production policy."""
    policy = production_policy()
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(policy, StubResolver()), use_dns_cache=False
    )
    async with aiohttp.ClientSession(connector=connector) as session:
        settings = DownloaderSettings(read_timeout_s=2, connect_timeout_s=2)
        fetcher = Fetcher(session, policy, settings)
        async with fetcher.open("link", link_request(url), None) as source:
            return b"".join([chunk async for chunk in source.chunks])


async def test_the_trusted_origin_itself_is_fetched(hosts) -> None:  # type: ignore[no-untyped-def]
    origin, origin_url, _trap, _ = hosts
    assert await fetch(f"{origin_url}/file") == b"secret internal data"
    assert origin.hits == ["/file"]


@pytest.mark.parametrize("target", LITERAL_TARGETS + SCHEMES)
async def test_a_link_to_an_internal_address_or_other_scheme_is_refused(target: str) -> None:
    with pytest.raises(BlockedUrl) as caught:
        await fetch(target)
    assert caught.value.kind is ErrorKind.BLOCKED_URL


@pytest.mark.parametrize("target", LITERAL_TARGETS + SCHEMES)
async def test_a_redirect_into_an_internal_address_is_refused(hosts, target: str) -> None:  # type: ignore[no-untyped-def]
    origin, origin_url, _trap, _ = hosts
    with pytest.raises(BlockedUrl):
        await fetch(f"{origin_url}/redirect?to={quote(target, safe='')}")
    assert len(origin.hits) == 1 and origin.hits[0].startswith("/redirect")


@pytest.mark.parametrize("name", sorted(INTERNAL_NAMES))
async def test_a_redirect_to_a_name_resolving_internally_is_refused_before_connecting(  # type: ignore[no-untyped-def]
    hosts, name: str
) -> None:
    _origin, origin_url, trap, trap_url = hosts
    port = trap_url.rsplit(":", 1)[1]
    with pytest.raises(BlockedUrl):
        await fetch(f"{origin_url}/redirect?to={quote(f'http://{name}:{port}/x', safe='')}")
    assert trap.hits == []


async def test_another_loopback_address_gets_no_request(hosts) -> None:  # type: ignore[no-untyped-def]
    _origin, origin_url, trap, trap_url = hosts
    with pytest.raises(BlockedUrl):
        await fetch(f"{origin_url}/redirect?to={quote(trap_url + '/file', safe='')}")
    with pytest.raises(BlockedUrl):
        await fetch(f"{trap_url}/file")
    assert trap.hits == []


async def test_a_redirect_loop_is_cut_off(hosts) -> None:  # type: ignore[no-untyped-def]
    origin, origin_url, _trap, _ = hosts
    url = f"{origin_url}/file"
    for _ in range(8):
        url = f"{origin_url}/redirect?to={quote(url, safe='')}"
    with pytest.raises(BlockedUrl):
        await fetch(url)
    assert len(origin.hits) <= 6
