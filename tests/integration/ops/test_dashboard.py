"""The dashboard over HTTP on the real stack: login, cookie, CSRF, CSP, escaping, actions."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mediaflow.config import Settings
from mediaflow.kafka.topics import TopicLayout
from mediaflow.storage.projection import LogRecord, open_store
from tests.support.dashboard import (
    HOSTILE_NAME,
    apply_event_log,
    dashboard_app,
    seed_dead_letter,
    seed_stored_media,
)
from tests.support.kafka import read_all
from tests.support.projection import detected

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    store = open_store(settings.projection_db_url)
    seed_stored_media(settings, store)
    async with TestClient(TestServer(dashboard_app(settings, store))) as test_client:
        yield test_client
    store.close()


async def logged_in(client: TestClient, settings: Settings) -> TestClient:
    response = await client.post(
        "/ui/login", data={"token": settings.api_token.reveal()}, allow_redirects=False
    )
    assert response.status == 303
    return client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def test_pages_need_a_login_and_the_api_still_needs_its_bearer_token(client):
    response = await client.get("/ui/dead-letters", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/ui/login")
    assert (await client.get("/media")).status == 401


async def test_a_wrong_token_gets_no_session_and_the_right_one_a_strict_httponly_cookie(
    client, settings
):
    wrong = await client.post("/ui/login", data={"token": "guess"}, allow_redirects=False)
    assert wrong.status == 401 and "Set-Cookie" not in wrong.headers
    right = await client.post(
        "/ui/login", data={"token": settings.api_token.reveal()}, allow_redirects=False
    )
    cookie = right.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; request.secure sets it behind TLS
    assert (await client.get("/ui/media")).status == 200


async def test_every_page_has_a_strict_csp_and_no_inline_script(client, settings, layout):
    seed_dead_letter(settings, layout, "m-dl")
    await logged_in(client, settings)
    listing = await (await client.get("/ui/dead-letters")).text()
    (letter,) = re.findall(r'href="/ui/dead-letters/([0-9]+:[0-9]+)"', listing)
    pages = ("/ui/login", "/ui/", "/ui/dead-letters", f"/ui/dead-letters/{letter}", "/ui/media")
    for path in (*pages, "/ui/media/m-img"):
        response = await client.get(path)
        assert response.status == 200, path
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, path
        assert "frame-ancestors 'none'" in policy
        html = await response.text()
        assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html)), path


async def test_a_hostile_file_name_is_shown_escaped_on_search_and_detail(client, settings):
    await logged_in(client, settings)
    for path in ("/ui/media?id=msg-hostile-1", "/ui/media/m-img"):
        html = await (await client.get(path)).text()
        assert HOSTILE_NAME not in html and "<img src=x" not in html
        assert "&lt;script&gt;document.title=" in html, path


async def test_actions_without_the_csrf_token_or_from_another_origin_are_refused(
    client, settings, layout: TopicLayout
):
    seed_dead_letter(settings, layout, "m-dl")
    await logged_in(client, settings)
    page = await (await client.get("/ui/dead-letters")).text()
    form = {"action": "redrive", "scope": "filter", "confirmed": "yes"}
    assert (await client.post("/ui/dead-letters/action", data=form)).status == 403
    foreign = await client.post(
        "/ui/dead-letters/action",
        data={**form, "csrf": csrf_of(page)},
        headers={"Origin": "https://evil.example"},
    )
    assert foreign.status == 403
    assert read_all(settings, layout.retry_tiers[0].topic, timeout=3) == []


async def test_redrive_asks_with_a_count_then_sends_and_the_letter_shows_redriven(
    client, settings, layout: TopicLayout
):
    seed_dead_letter(settings, layout, "m-dl")
    await logged_in(client, settings)
    page = await (await client.get("/ui/dead-letters")).text()
    form = {"action": "redrive", "scope": "filter", "csrf": csrf_of(page)}
    confirm = await (await client.post("/ui/dead-letters/action", data=form)).text()
    assert "This will redrive <strong>1</strong> dead letter(s)." in confirm
    assert read_all(settings, layout.retry_tiers[0].topic, timeout=3) == []
    confirmed = {**form, "confirmed": "yes", "expected": "1"}
    done = await client.post("/ui/dead-letters/action", data=confirmed)
    assert "sent 1 record(s)" in await done.text()
    (sent,) = read_all(settings, layout.retry_tiers[0].topic)
    assert sent.key() == b"m-dl"
    store = open_store(settings.projection_db_url)
    apply_event_log(settings, layout, store)
    store.close()
    listing = await (await client.get("/ui/dead-letters?state=redriven")).text()
    assert "1 dead letter(s) match" in listing


async def test_a_selection_that_grew_after_the_confirmation_is_asked_about_again(
    client, settings, layout: TopicLayout
):
    seed_dead_letter(settings, layout, "m-1")
    await logged_in(client, settings)
    page = await (await client.get("/ui/dead-letters")).text()
    form = {"action": "dismiss", "scope": "filter", "csrf": csrf_of(page)}
    confirm = await (await client.post("/ui/dead-letters/action", data=form)).text()
    assert "This will dismiss <strong>1</strong>" in confirm
    seed_dead_letter(settings, layout, "m-2")
    confirmed = {**form, "confirmed": "yes", "expected": "1"}
    again = await (await client.post("/ui/dead-letters/action", data=confirmed)).text()
    assert "The selection changed" in again and "This will dismiss <strong>2</strong>" in again
    assert read_all(settings, layout.media_events, timeout=3) == []


async def test_the_overview_of_one_client_shows_its_pending_media_and_open_dead_letters(
    client, settings, layout: TopicLayout
):
    store = open_store(settings.projection_db_url)
    store.apply_batch([LogRecord(layout.media_events, 0, 0, detected("m-wait", client="2"))])
    store.close()
    seed_dead_letter(settings, layout, "m-dl")  # client 2's download request
    await logged_in(client, settings)

    html = await (await client.get("/ui/?client=2")).text()
    assert re.search(r'id="client-pending">1<', html)
    assert re.search(r'id="client-dead-letters"[^>]*>1<', html)
    assert 'href="/ui/dead-letters?client=2&amp;state=open"' in html
    data = await (await client.get("/ui/overview.json?client=2")).json()
    view = data["client_view"]
    assert (view["pending"], view["open_dead_letters"]) == (1, 1)
    assert view["oldest_pending_age_s"] > 86_400  # first seen on T0, days ago

    other = await (await client.get("/ui/overview.json?client=c1")).json()
    assert other["client_view"] == {
        "pending": 0,
        "oldest_pending_age_s": None,
        "open_dead_letters": 0,
    }
