"""``serve webhooks --workers 2``: one ``/metrics`` that counts every worker's webhooks."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mediaflow.config import REPO_ROOT, Settings
from simulator.pipeline import free_port
from tests.support.stack import stack_env
from tests.support.waiting import eventually
from tests.support.webhook import WAPI_SECRET, post_webhook, write_tenants

pytestmark = pytest.mark.integration

IMAGE = (REPO_ROOT / "tests" / "fixtures" / "payloads" / "wapi_image.json").read_bytes()
WEBHOOKS = 24
SCRAPES = 8


def accepted_on(port: int) -> float:
    """The W-API webhooks answered 200, as one scrape of ``/metrics`` (a new connection) says."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "mediaflow_webhook_requests_total"
        and sample.labels == {"provider": "wapi", "status": "200"}
    )


def test_every_scrape_counts_the_webhooks_of_every_worker_and_leaves_no_files(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {
        **stack_env(),
        "MEDIAFLOW_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "MEDIAFLOW_TOPICS_FILE": str(settings.kafka.topics_file),
        "MEDIAFLOW_TENANTS_FILE": str(write_tenants(tmp_path)),
        "MEDIAFLOW_WEBHOOK_PORT": str(port),
        "MEDIAFLOW_LOG_FORMAT": "json",
        "TMPDIR": str(scratch),  # where the receiver's own files would be left behind
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "mediaflow", "serve", "webhooks", "--workers", "2"],
        env=env,
        cwd=REPO_ROOT,
    )
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
