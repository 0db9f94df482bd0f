"""``serve webhooks --workers 2``: one ``/metrics`` that counts every worker's webhooks."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from mediaflow.config import REPO_ROOT, Settings
from simulator.pipeline import free_port
from tests.support.waiting import eventually
from tests.support.webhook import WAPI_SECRET, post_webhook, scraped, serve_workers, write_tenants

pytestmark = pytest.mark.integration

IMAGE = (REPO_ROOT / "tests" / "fixtures" / "payloads" / "wapi_image.json").read_bytes()
WEBHOOKS = 24
SCRAPES = 8


def accepted_on(port: int) -> float:
    """The W-API webhooks answered 200, as one scrape of ``/metrics`` says."""
    labels = {"provider": "wapi", "status": "200"}
    return scraped(port, "mediaflow_webhook_requests_total", labels)


def test_every_scrape_counts_the_webhooks_of_every_worker_and_leaves_no_files(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    # TMPDIR: where the receivers' own files would be left behind.
    server = serve_workers(settings, write_tenants(tmp_path), port, TMPDIR=str(scratch))
    try:
        assert eventually(lambda: post_webhook(port, IMAGE, WAPI_SECRET) == 200, timeout=30)
        # Each request on a new connection: the kernel spreads them over both workers.
        accepted = 1 + sum(post_webhook(port, IMAGE, WAPI_SECRET) == 200 for _ in range(WEBHOOKS))
        assert accepted == WEBHOOKS + 1
        assert [accepted_on(port) for _ in range(SCRAPES)] == [accepted] * SCRAPES
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
    assert code == 0
    assert list(scratch.iterdir()) == []
