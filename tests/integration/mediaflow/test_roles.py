import time
import urllib.request

import pytest

from mediaflow.codec import AvroCodec
from mediaflow.errors import EXIT_CONFIG
from mediaflow.events import WebhookReceived, new_event_id, utcnow
from mediaflow.kafka.topics import load_layout
from mediaflow.process import settings_env
from simulator.pipeline import free_port
from tests.support.kafka import produce
from tests.support.processes import run_mediaflow, spawn_role, stop

pytestmark = pytest.mark.integration


def scrape(port: int, needle: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
                text = answer.read().decode()
            if needle in text:
                return text
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{needle!r} never appeared on :{port}/metrics")


def test_a_processor_role_serves_prometheus_metrics_and_stops_cleanly_on_sigterm(settings):
    layout = load_layout(settings.kafka)
    envelope = WebhookReceived(
        event_id=new_event_id(),
        provider="wapi",
        client_id="2",
        instance_id="i-1",
        event_type="webhookStatus",
        received_at=utcnow(),
        body=b'{"event": "webhookStatus", "instanceId": "i-1"}',
    )
    produce(settings, layout.webhooks, [(b"i-1|c", AvroCodec().encode(envelope))])
    port = free_port()
    proc = spawn_role("detector", settings, env={"MEDIAFLOW_METRICS_PORT": str(port)})
    try:
        text = scrape(
            port, f'mediaflow_records_in_total{{stage="detector",topic="{layout.webhooks}"}} 1.0'
        )
        assert "mediaflow_commit_seconds" in text
    finally:
        assert stop(proc) == 0


def test_run_all_stops_every_role_when_one_refuses_its_configuration(settings, tmp_path):
    missing = tmp_path / "tenants.toml"
    env = settings_env(settings) | {
        "MEDIAFLOW_TENANTS_FILE": str(missing),
        "MEDIAFLOW_WEBHOOK_PORT": str(free_port()),
        "MEDIAFLOW_API_PORT": str(free_port()),
        "MEDIAFLOW_LOG_FORMAT": "json",
    }
    done = run_mediaflow("run", "all", env=env, timeout=120)
    assert done.returncode == EXIT_CONFIG
    # The role's own reason, then the supervisor's: no restart in between.
    assert f"tenant registry {missing} does not exist" in done.stderr
    assert "child_exited" not in done.stderr
    assert "mediaflow stopped." in done.stdout
    assert done.stderr.rstrip().endswith(
        "role refused its configuration (its message is above); "
        "every role was stopped: fix the setting and start again"
    )
