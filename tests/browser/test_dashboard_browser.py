"""The dashboard in a real headless chromium, against the whole pipeline on the real stack.

One walk through, as an on-call engineer would: log in, watch the overview
change by itself while webhooks arrive, open the dead letter an expired media
left, redrive it and see the media stored, find a media by message id and see
its preview, and open a media whose sender-chosen file name is a script. Each
page is saved as a screenshot in the test's temporary folder, or in
``MEDIAFLOW_SCREENSHOT_DIR`` (``make screenshots`` refreshes ``docs/img/``,
which the README shows).

The browser is Debian's ``chromium`` (``deploy/browser.sh`` installs it;
``make test`` passes its path as ``MEDIAFLOW_CHROMIUM``), driven by Playwright
through ``executable_path``: no browser download of Playwright's own.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from mediaflow.config import Settings
from mediaflow.events import MediaType
from mediaflow.media_state import MediaStatus
from mediaflow.process import settings_env
from mediaflow.tenants import TenantRegistry
from simulator.demo import local_environment
from simulator.faults import Faults
from simulator.media import MediaLibrary
from simulator.pipeline import Pipeline, Run
from simulator.sender import send_webhooks
from simulator.servers import SimulatorThread
from simulator.webhooks import WebhookFactory
from tests.support.dashboard import HOSTILE_NAME
from tests.support.processes import run_mediaflow
from tests.support.stack import stack_env

pytestmark = pytest.mark.integration

WIDE = {"width": 1280, "height": 900}
CLIENT_TOKEN = "loja-centro-dashboard-token-0123456789"
CLIENT_TOKEN_ENV = "MEDIAFLOW_TEST_CLIENT3_API_TOKEN"
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str:
    path = os.environ.get("MEDIAFLOW_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("chromium is not installed: run deploy/browser.sh as root (make test does)")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # --no-sandbox: chromium refuses to start as root with its sandbox (CI runs as root).
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.5)


def status_of(run: Run, media_id: str) -> str | None:
    store = run.open_store()
    try:
        row = store.get(media_id)
    finally:
        store.close()
    return None if row is None else row.status


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return Path(os.environ.get("MEDIAFLOW_SCREENSHOT_DIR") or tmp_path)


def with_client_token(env: dict[str, str], folder: Path) -> dict[str, str]:
    """``env`` whose tenant registry also declares an API token of client 3 (no media here)."""
    registry = folder / "tenants.toml"
    declared = Settings.from_env(env).tenants_file.read_text()
    entry = f'client_id = "3"\ntoken_env = "{CLIENT_TOKEN_ENV}"\n'
    registry.write_text(f'{declared}\n[api_tokens."loja-centro"]\n{entry}')
    return {**env, "MEDIAFLOW_TENANTS_FILE": str(registry), CLIENT_TOKEN_ENV: CLIENT_TOKEN}


def test_an_operator_walks_the_dashboard_from_login_to_a_redriven_media(
    browser: Browser, stack: None, shots: Path, tmp_path: Path
) -> None:
    env = with_client_token(local_environment(stack_env()), tmp_path)
    faults = Faults()
    library = MediaLibrary(seed=7)
    images = [library.make(MediaType.IMAGE) for _ in range(3)]
    expiring = library.make(MediaType.IMAGE)
    hostile = library.make(MediaType.DOCUMENT, file_name=HOSTILE_NAME)
    faults.expired.add(expiring.cdn_id)
    registry = TenantRegistry.load(Settings.from_env(env).tenants_file, env)
    secrets = {i: t.webhook_secret.reveal() for i, t in registry.tenants.items()}
    tokens = {i: t.wapi_token.reveal() for i, t in registry.tenants.items() if t.wapi_token}
    with SimulatorThread(library, faults, tokens) as sim:
        run = Run.create("browser", wapi_url=sim.wapi_url, cdn_url=sim.cdn_url, environ=env)
        factory = WebhookFactory(library, cdn_url=sim.cdn_url, files_url=sim.wapi_url, seed=7)
        run.prepare()
        try:
            with Pipeline(run) as pipeline:  # entering starts every role
                pipeline.wait_assigned()
                walk(browser, run, factory, secrets, images, expiring, hostile, faults, shots)
        finally:
            run.discard()


def walk(browser, run, factory, secrets, images, expiring, hostile, faults, shots) -> None:
    def shot(page: Page, name: str) -> None:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    base = f"{run.api_url}/ui"
    context = browser.new_context(viewport=WIDE)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # Log in with the API token.
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/login")
    shot(page, "dashboard-login")
    page.fill("input[name=token]", run.settings.api_token.reveal())
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator("#dead-letters")).to_have_text("0")

    # Webhooks arrive: the overview changes by itself, without a reload.
    page.evaluate("window.notReloaded = true")
    webhooks = [factory.wapi_media(m) for m in images] + [factory.wapi_media(expiring)]
    webhooks.append(factory.wapi_media(hostile))
    # In a thread of its own: Playwright's sync API keeps an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        sending = send_webhooks(webhooks, base_url=run.webhook_url, secrets=secrets)
        summary = pool.submit(asyncio.run, sending).result()
    ids = {d.webhook.media[0].cdn_id: d.media_ids[0] for d in summary.accepted}
    expect(page.locator("#dead-letters")).to_have_text("1", timeout=60_000)
    expect(page.locator("#by-status")).to_contain_text("stored", timeout=60_000)
    assert page.evaluate("window.notReloaded") is True

    # The dead letter of the expired media: open it, redrive it once the link works again.
    page.click("nav >> text=Dead letters")
    row = page.locator("#letters tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("expired")
    shot(page, "dashboard-dead-letters")
    row.locator("td:nth-child(2) a").click()
    expect(page.locator("#letter-detail")).to_contain_text(ids[expiring.cdn_id])
    assert "media_key" not in page.content() or "****" in page.content()
    shot(page, "dashboard-dead-letter")
    faults.expired.discard(expiring.cdn_id)
    page.click("button[value=redrive]")
    expect(page.locator("#confirm-count")).to_have_text("This will redrive 1 dead letter(s).")
    page.click("text=Yes, redrive 1")
    expect(page.locator("#result")).to_contain_text("sent 1 record(s)")
    wait_for(
        "the redriven media to be stored",
        lambda: status_of(run, ids[expiring.cdn_id]) == MediaStatus.STORED,
    )
    page.goto(f"{base}/dead-letters")
    expect(page.locator("#letters tbody tr")).to_contain_text("stored")
    # Its history, read from the topics: every step, the dead letter linked.
    page.goto(f"{base}/media/{ids[expiring.cdn_id]}")
    steps = page.locator("#history .event-type")
    expect(steps.first).to_have_text("MediaDetected")
    for step in (
        "MediaDownloadRequested",
        "MediaDeadLettered",
        "dead letter",
        "MediaRedriven",
        "MediaStored",
    ):
        expect(steps.filter(has_text=step).first).to_be_attached()
    expect(page.locator("#history a[href*='/dead-letters/']")).to_have_count(1)
    shot(page, "dashboard-media-history")

    # Find a media by its message id; its preview loads through a presigned link.
    message_id = next(
        d.webhook.message_id for d in summary.accepted if d.webhook.media[0] is images[0]
    )
    wait_for(
        "the image to be stored",
        lambda: status_of(run, ids[images[0].cdn_id]) == MediaStatus.STORED,
    )
    page.click("nav >> text=Media")
    page.fill("input[name=id]", message_id)
    page.click("form.filters button[type=submit]")
    result = page.locator("#media tbody tr")
    expect(result).to_have_count(1)
    shot(page, "dashboard-media-search")
    # The preview request is let through by the CSP, answered as an attachment of a
    # type a browser draws, and drawn (the simulator's images start with a real JPEG).
    with page.expect_response(lambda r: "X-Amz-Signature" in r.url) as preview:
        result.locator("a").first.click()
    assert preview.value.status == 200
    assert preview.value.headers["content-type"] == "image/jpeg"
    assert preview.value.headers["content-disposition"].startswith("attachment")
    preview_image = page.locator("#preview-image")
    expect(preview_image).to_be_attached()
    wait_for(
        "the preview to be drawn",
        lambda: preview_image.evaluate("image => image.complete && image.naturalWidth") == 64,
    )
    shot(page, "dashboard-media-detail")

    # A sender-chosen file name that is a script stays text.
    wait_for("the document to be stored", lambda: status_of(run, ids[hostile.cdn_id]) is not None)
    page.goto(f"{base}/media/{ids[hostile.cdn_id]}")
    title = page.title()
    expect(page.locator("#media-detail .file-name")).to_contain_text("<script>")
    assert title.startswith("Media ") and "pwned" not in page.title()
    assert dialogs == []
    shot(page, "dashboard-hostile-name")

    # Back on the overview, for one client: the last hour and the 24-hour chart.
    page.goto(f"{base}/?client=2")
    expect(page.locator("#hour-stored")).to_have_text(re.compile("^[1-9]"), timeout=45_000)
    expect(page.locator("#activity rect.stored").first).to_be_attached()
    # Caught up, the numbers are true: transaction markers are not lag, nor a backlog.
    lags = page.locator("#groups tbody td:nth-child(6)")
    wait_for("every lag to read 0", lambda: set(lags.all_inner_texts()) == {"0"}, 30)
    in_flight = page.locator("#stages tbody td:nth-child(3)")
    wait_for("nothing in flight", lambda: set(in_flight.all_inner_texts()) == {"0"}, 30)
    expect(page.locator("#client-dead-letters")).to_have_text("0")  # redriven, then stored
    expect(page.locator("#not-applied")).to_have_text("0")
    done = run_mediaflow(
        "status", "--json", "--interval", "0", env=settings_env(run.settings, run.environ)
    )
    assert done.returncode == 0, done.stderr
    cli = json.loads(done.stdout)
    assert {g["lag"] for g in cli["groups"]} == {0}
    assert (cli["dead_letters"], cli["projection"]["events_not_applied"]) == (1, 0)
    shot(page, "dashboard-overview")
    page.set_viewport_size(PHONE)
    shot(page, "dashboard-overview-phone")

    # When the overview cannot refresh, it says so (a faked clock: no real waiting).
    offline = context.new_page()
    offline.clock.install()
    offline.goto(f"{base}/")
    expect(offline.locator("#stale")).to_be_hidden()
    offline.route("**/overview.json*", lambda route: route.abort())
    offline.clock.run_for(20_000)
    expect(offline.locator("#stale")).to_be_visible()
    shot(offline, "dashboard-overview-stale")
    context.close()

    # Client 3's token sees client 3 only: none of client 2's media, letters or counts.
    client = browser.new_context(viewport=WIDE).new_page()
    client.goto(f"{base}/login")
    client.fill("input[name=token]", CLIENT_TOKEN)
    client.click("button[type=submit]")
    expect(client.locator("#session-client")).to_have_text("client 3")
    expect(client.locator("#by-status tbody tr")).to_have_count(0)
    expect(client.locator("#groups")).to_have_count(0)
    client.goto(f"{base}/dead-letters?client=2")
    expect(client.locator("#letter-count")).to_have_text("0 dead letter(s) match.")
    assert client.goto(f"{base}/media/{ids[hostile.cdn_id]}").status == 404
    client.context.close()
