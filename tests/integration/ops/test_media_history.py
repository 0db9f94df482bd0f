"""A media's history read from the topics, on the real stack: the page, the CLI, the cap."""

from __future__ import annotations

import json
import re

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mediaflow.cli import build_parser
from mediaflow.events import MediaDownloadFailed, MediaStored
from mediaflow.kafka.topics import load_layout
from mediaflow.ops.history import media_history
from mediaflow.ops.ui import media as media_page
from mediaflow.storage.projection import open_store
from simulator import Faults, MediaLibrary, running_simulator
from tests.support.dashboard import apply_event_log, dashboard_app
from tests.support.downloader import (
    INSTANCE,
    TOKEN,
    of_type,
    request_for,
    run_downloader,
    send,
    settings_for,
    tenants_file,
)

pytestmark = pytest.mark.integration
DAY_MS = 86_400_000


@pytest.fixture
async def retried_then_stored(make_settings, tmp_path):
    """A media whose first download answered 500 and whose second was stored."""
    library = MediaLibrary(seed=28, max_size=20_000)
    m = library.make("image")
    faults = Faults()
    faults.script("wapi", m.cdn_id, [500, 200])
    async with running_simulator(library, faults, {INSTANCE: TOKEN}) as sim:
        tenants = tenants_file(tmp_path, fetch_order=["wapi"])
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants)
        request = request_for(m)
        send(settings, [request])
        await run_downloader(settings, idle_exit_s=2)
    layout = load_layout(settings.kafka)
    store = open_store(settings.projection_db_url)
    apply_event_log(settings, layout, store)
    yield settings, layout, store, request.media_id
    store.close()


def rows_of(html: str) -> list[list[str]]:
    body = html.split('<table id="history">', 1)[1].split("</table>", 1)[0]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", tr)]
        for tr in re.findall(r'<tr class="event">(.*?)</tr>', body, re.S)
    ]


async def test_a_media_history_comes_from_the_event_log_in_order_not_from_the_row(
    retried_then_stored, monkeypatch, capsys
):
    settings, layout, store, media_id = retried_then_stored
    (failed,) = of_type(settings, MediaDownloadFailed)
    (stored,) = of_type(settings, MediaStored)
    # Someone rewrote the row's history times a day later (window bounds untouched).
    state = store.load_states([media_id])[media_id]
    state["last_failed_at"] += DAY_MS
    state["stored_at"] += DAY_MS
    store.put_states([state])

    async with TestClient(TestServer(dashboard_app(settings, store))) as client:
        await client.post(
            "/ui/login", data={"token": settings.api_token.reveal()}, allow_redirects=False
        )
        html = await (await client.get(f"/ui/media/{media_id}")).text()

    rows = rows_of(html)
    assert [(r[1], r[2], r[3], r[4].split(" ")[0]) for r in rows] == [
        ("MediaDownloadRequested", "", "", ""),
        ("MediaDownloadFailed", "1", "", "server_error"),
        ("MediaStored", "2", "wapi", ""),
    ]
    assert rows[1][0] == failed.occurred_at.isoformat(timespec="milliseconds")
    assert rows[2][0] == stored.occurred_at.isoformat(timespec="milliseconds")
    assert rows[2][5].startswith(f"{layout.media_events}[")
    assert "history truncated" not in html

    # Capped: the page says so; the CLI prints the same history.
    capped = media_history(settings, layout, store.get(media_id), limit=1)
    assert capped.capped and len(capped.entries) <= 3

    monkeypatch.setattr(media_page, "HISTORY_LIMIT", 1)
    async with TestClient(TestServer(dashboard_app(settings, store))) as client:
        await client.post(
            "/ui/login", data={"token": settings.api_token.reveal()}, allow_redirects=False
        )
        html = await (await client.get(f"/ui/media/{media_id}")).text()
    assert "history truncated after" in html

    args = build_parser().parse_args(["media", "history", media_id, "--json"])
    assert args.handler(args, settings) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [e["event"] for e in printed["entries"]] == [
        "MediaDownloadRequested",
        "MediaDownloadFailed",
        "MediaStored",
    ]
    assert printed["capped"] == []
