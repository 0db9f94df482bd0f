"""``mediaflow serve webhooks --workers 2``: one port, SIGHUP reloads tenants, SIGTERM exits 0."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from mediaflow.config import REPO_ROOT, Settings
from mediaflow.errors import EXIT_CONFIG
from mediaflow.kafka.topics import load_layout
from simulator.pipeline import free_port
from tests.support.kafka import wait_for
from tests.support.processes import run_mediaflow
from tests.support.stack import stack_env
from tests.support.waiting import eventually
from tests.support.webhook import (
    WAPI_INSTANCE,
    WAPI_SECRET,
    post_webhook,
    serve_workers,
    write_tenants,
)

pytestmark = pytest.mark.integration

IMAGE = (REPO_ROOT / "tests" / "fixtures" / "payloads" / "wapi_image.json").read_bytes()
NEW_INSTANCE = "NEW123-ADDED-BYHUP1"


def test_workers_share_a_port_reload_tenants_on_sighup_and_exit_0_on_sigterm(
    settings: Settings, tmp_path: Path
) -> None:
    tenants = write_tenants(tmp_path)
    port = free_port()
    server = serve_workers(settings, tenants, port)
    try:
        assert eventually(lambda: post_webhook(port, IMAGE, WAPI_SECRET) == 200, timeout=30)
        new_body = IMAGE.replace(WAPI_INSTANCE.encode(), NEW_INSTANCE.encode())
        assert post_webhook(port, new_body, "new-secret") == 401

        secret = tmp_path / "new.secret"
        secret.write_text("new-secret")
        with tenants.open("a") as handle:
            handle.write(
                f'[tenants."{NEW_INSTANCE}"]\nclient_id = "9"\nprovider = "wapi"\n'
                f'webhook_secret_file = "{secret}"\n'
            )
        server.send_signal(signal.SIGHUP)
        # Both workers reloaded: several requests in a row all succeed.
        assert eventually(
            lambda: all(post_webhook(port, new_body, "new-secret") == 200 for _ in range(4)),
            timeout=30,
        )
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
    assert code == 0
    # Every request answered 200 is on the topic: one before the reload, four after.
    assert len(wait_for(settings, load_layout(settings.kafka).webhooks, 5, timeout=20)) == 5


def test_workers_refused_their_configuration_stop_all_instead_of_restarting(
    settings: Settings, tmp_path: Path
) -> None:
    env = {
        **stack_env(),
        "MEDIAFLOW_TOPICS_FILE": str(settings.kafka.topics_file),
        "MEDIAFLOW_TENANTS_FILE": str(write_tenants(tmp_path)),
        "MEDIAFLOW_WEBHOOK_PORT": str(free_port()),
        # A property only librdkafka can refuse, so only a worker finds out.
        "MEDIAFLOW_KAFKA_PROP_BATCH_SIZEZ": "1",
        "MEDIAFLOW_LOG_FORMAT": "json",
    }
    done = run_mediaflow("serve", "webhooks", "--workers", "2", env=env, timeout=60)
    assert done.returncode == EXIT_CONFIG
    # A worker's own reason, then the supervisor's: no restart in between.
    assert "mediaflow serve: the Kafka client configuration was refused" in done.stderr
    assert "No such configuration property" in done.stderr
    assert "batch.sizez" in done.stderr
    assert "child_exited" not in done.stderr
    assert done.stderr.rstrip().endswith(
        "worker refused its configuration (its message is above); "
        "every worker was stopped: fix the setting and start again"
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_already_in_use_stops_the_receiver_with_the_variables_to_change(
    settings: Settings, tmp_path: Path, workers: str
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = {
            **stack_env(),
            "MEDIAFLOW_TOPICS_FILE": str(settings.kafka.topics_file),
            "MEDIAFLOW_TENANTS_FILE": str(write_tenants(tmp_path)),
            "MEDIAFLOW_WEBHOOK_PORT": str(port),
        }
        done = run_mediaflow("serve", "webhooks", "--workers", workers, env=env, timeout=60)
    assert done.returncode == EXIT_CONFIG
    assert (
        f"cannot listen on 127.0.0.1:{port}: Address already in use; stop what holds it, "
        "or change MEDIAFLOW_WEBHOOK_HOST and MEDIAFLOW_WEBHOOK_PORT"
    ) in done.stderr
    assert "Traceback" not in done.stderr
