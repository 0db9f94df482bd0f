"""A client token on the dashboard, over HTTP on the real stack: its own client, nothing else.

The client ``acme`` logs in with its API token and tries every way to another
client's media, dead letters and counts: URLs of their ids, filters naming the
other client, a ticked selection of the other client's letter, a redrive of
"everything the filter shows". A session ends when its token is rotated or
removed from the registry (SIGHUP reload), without waiting for its 8 hours.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mediaflow.config import Settings
from mediaflow.kafka.topics import TopicLayout
from mediaflow.processors.projection.tokens import ApiTokens, TokenSource
from mediaflow.storage.projection import open_store
from tests.support.dashboard import dashboard_app, seed_dead_letter, seed_stored_media
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration

ACME = "acme-dashboard-token-0123456789"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "acme.token"
    path.write_text(ACME)
    return path


@pytest.fixture
def registry(tmp_path: Path, token_file: Path) -> Path:
    path = tmp_path / "tenants.toml"
    entry = f'client_id = "acme"\ntoken_file = "{token_file}"\n'
    path.write_text(f'[api_tokens."acme-platform"]\n{entry}')
    return path


@pytest.fixture
def tokens(settings: Settings, registry: Path) -> TokenSource:
    return TokenSource(functools.partial(ApiTokens.load, registry, admin=settings.api_token))


@pytest.fixture
async def client(
    settings: Settings, layout: TopicLayout, tokens: TokenSource
) -> AsyncIterator[TestClient]:
    store = open_store(settings.projection_db_url)
    seed_stored_media(settings, store)  # client c1's m-img, message msg-hostile-1
    seed_stored_media(settings, store, "m-acme", client="acme", message_id="msg-acme-1")
    seed_dead_letter(settings, layout, "m-dl-acme", client="acme")
    seed_dead_letter(settings, layout, "m-dl-other", client="2")
    async with TestClient(TestServer(dashboard_app(settings, store, tokens))) as test_client:
        yield test_client
    store.close()


async def log_in(client: TestClient, token: str) -> None:
    client.session.cookie_jar.clear()
    response = await client.post("/ui/login", data={"token": token}, allow_redirects=False)
    assert response.status == 303, await response.text()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def letter_id(settings: Settings, layout: TopicLayout, media_id: str) -> str:
    (found,) = [m for m in read_all(settings, layout.dead_letters) if m.key() == media_id.encode()]
    return f"{found.partition()}:{found.offset()}"


async def test_a_client_overview_counts_only_its_own_media_whatever_the_filter_says(
    client, settings
):
    await log_in(client, settings.api_token.reveal())
    admin = await (await client.get("/ui/overview.json")).json()
    assert admin["projection"]["by_status"] == {"stored": 2} and admin["dead_letters"] == 2

    await log_in(client, ACME)
    data = await (await client.get("/ui/overview.json?client=c1")).json()
    assert data["client"] == "acme"
    assert data["projection"]["by_status"] == {"stored": 1}
    assert data["dead_letters"] == 0  # its media dead-lettered, not the cluster's letters
    assert "groups" not in data and "newest_dead_letter" not in data
    assert data["broker"] == admin["broker"]  # cluster health is shared
    html = await (await client.get("/ui/?client=c1")).text()
    assert "client acme" in html and "client c1" not in html


async def test_a_client_session_finds_no_other_clients_media_by_url_id_or_filter(client, settings):
    await log_in(client, ACME)
    assert (await client.get("/ui/media/m-img")).status == 404
    assert (await client.get("/ui/media/m-acme")).status == 200
    for query in ("", "id=m-img", "id=msg-hostile-1", "client_id=c1", "id=m-img&client_id=c1"):
        html = await (await client.get(f"/ui/media?{query}")).text()
        assert 'href="/ui/media/m-img"' not in html and "msg-hostile-1</td>" not in html, query
    found = await (await client.get("/ui/media?id=msg-acme-1")).text()
    assert 'href="/ui/media/m-acme"' in found


async def test_a_client_session_sees_and_redrives_only_its_own_dead_letters(
    client, settings, layout: TopicLayout
):
    other = letter_id(settings, layout, "m-dl-other")
    await log_in(client, ACME)
    listing = await (await client.get("/ui/dead-letters")).text()
    assert "1 dead letter(s) match" in listing
    assert "m-dl-acme" in listing and "m-dl-other" not in listing
    tampered = await (await client.get("/ui/dead-letters?client=2")).text()
    assert "0 dead letter(s) match" in tampered and "m-dl-other" not in tampered
    assert (await client.get(f"/ui/dead-letters/{other}")).status == 404

    csrf = csrf_of(listing)
    ticked = {"action": "redrive", "id": other, "csrf": csrf}
    confirm = await (await client.post("/ui/dead-letters/action", data=ticked)).text()
    assert "This will redrive <strong>0</strong>" in confirm
    forced = {**ticked, "confirmed": "yes", "expected": "0"}
    forced_answer = await client.post("/ui/dead-letters/action", data=forced)
    assert "sent 0 record(s)" in await forced_answer.text()
    for asked in ({}, {"client": "2"}):
        by_filter = {"action": "redrive", "scope": "filter", "csrf": csrf, **asked}
        confirm = await (await client.post("/ui/dead-letters/action", data=by_filter)).text()
        assert f"This will redrive <strong>{0 if asked else 1}</strong>" in confirm, asked
    confirmed = {"action": "redrive", "scope": "filter", "csrf": csrf, "confirmed": "yes"}
    done = await client.post("/ui/dead-letters/action", data={**confirmed, "expected": "1"})
    assert "sent 1 record(s)" in await done.text()
    sent = read_all(settings, layout.retry_tiers[0].topic)
    assert [m.key() for m in sent] == [b"m-dl-acme"]


async def test_a_rotated_or_removed_client_token_ends_its_sessions(
    client, settings, tokens: TokenSource, token_file: Path, registry: Path
):
    await log_in(client, ACME)
    assert (await client.get("/ui/media", allow_redirects=False)).status == 200

    token_file.write_text("acme-rotated-token-0123456789")
    assert tokens.reload()
    refused = await client.get("/ui/media", allow_redirects=False)
    assert (refused.status, refused.headers["Location"]) == (303, "/ui/login")
    stale = await client.post("/ui/login", data={"token": ACME}, allow_redirects=False)
    assert stale.status == 401

    await log_in(client, "acme-rotated-token-0123456789")
    assert (await client.get("/ui/media", allow_redirects=False)).status == 200
    registry.write_text("")
    assert tokens.reload()
    assert (await client.get("/ui/media", allow_redirects=False)).status == 303
