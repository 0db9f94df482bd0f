"""More connections than the receiver may hold: a clear 503, no log flood, no harm.

The receiver runs as ``mediaflow run webhooks`` with real Kafka, and either a
small open-files limit (soft and hard, so it cannot raise it) or a small
``MEDIAFLOW_WEBHOOK_MAX_CONNECTIONS``.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple

import pytest

from mediaflow.config import REPO_ROOT, Settings
from mediaflow.serving import RETRY_AFTER_S
from simulator.pipeline import free_port
from tests.support.connections import OPEN_FILES, PAST_THE_LIMIT, answered, hold, read_answer
from tests.support.processes import spawn_role, stop
from tests.support.waiting import eventually
from tests.support.webhook import post_webhook, request_head, write_tenants

pytestmark = pytest.mark.integration

IMAGE = (REPO_ROOT / "tests" / "fixtures" / "payloads" / "wapi_image.json").read_bytes()


def refused_total(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = re.search(
        r'^mediaflow_http_connections_refused_total\{role="webhooks"\} (\S+)$', text, re.M
    )
    return float(found.group(1)) if found else 0.0


class Receiver(NamedTuple):
    port: int
    log: Path


@pytest.fixture
def receiver(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[Receiver]:
    port = free_port()
    settings = make_settings(tenants_file=write_tenants(tmp_path), webhook_port=port)
    log = tmp_path / "receiver.log"
    with log.open("wb") as log_file:
        process = spawn_role("webhooks", settings, max_open_files=OPEN_FILES, log=log_file)
    try:
        assert eventually(lambda: post_webhook(port, IMAGE) == 200, timeout=30), (
            "the receiver did not start"
        )
        yield Receiver(port, log)
    finally:
        assert stop(process) == 0


def test_connections_past_the_limit_get_a_503_and_the_admitted_ones_keep_working(
    receiver: Receiver,
) -> None:
    with ExitStack() as held:
        connections = hold(held, receiver.port, PAST_THE_LIMIT)
        # Accepted in order: once the last one is answered, every one has been decided.
        assert eventually(lambda: connections[-1] in answered(connections), timeout=20)
        refused = answered(connections)
        admitted = connections[: len(connections) - len(refused)]
        assert refused == connections[len(admitted) :]  # the first ones in, every later one out
        assert len(admitted) >= 100  # the reserve is all that is withheld

        head, body = read_answer(refused[0])
        assert head.startswith(b"HTTP/1.1 503 ")
        assert f"Retry-After: {RETRY_AFTER_S}".encode() in head
        assert b"Connection: close" in head
        assert json.loads(body)["error"] == "too_many_connections"

        # The connections it holds are served as before.
        admitted[0].sendall(request_head(len(IMAGE)) + IMAGE)
        assert admitted[0].recv(65536).startswith(b"HTTP/1.1 200 ")

    # Once the clients hang up, new connections are admitted again.
    assert eventually(lambda: post_webhook(receiver.port, IMAGE) == 200, timeout=20)
    assert refused_total(receiver.port) >= len(refused)
    logs = receiver.log.read_text()
    assert "out of system resource" not in logs
    assert '"level": "error"' not in logs
    assert '"event": "connections_refused"' in logs  # said once, not once per connection


MAX_CONNECTIONS = 40


@pytest.fixture
def capped_receiver(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[Receiver]:
    port = free_port()
    settings = make_settings(
        tenants_file=write_tenants(tmp_path),
        webhook_port=port,
        webhook_max_connections=MAX_CONNECTIONS,
    )
    log = tmp_path / "receiver.log"
    with log.open("wb") as log_file:
        process = spawn_role("webhooks", settings, log=log_file)  # the open-files limit is high
    try:
        assert eventually(lambda: post_webhook(port, IMAGE) == 200, timeout=30), (
            "the receiver did not start"
        )
        yield Receiver(port, log)
    finally:
        assert stop(process) == 0


def test_connections_past_the_configured_limit_get_a_503_and_the_admitted_ones_keep_working(
    capped_receiver: Receiver,
) -> None:
    with ExitStack() as held:
        connections = hold(held, capped_receiver.port, MAX_CONNECTIONS + 20)
        assert eventually(lambda: connections[-1] in answered(connections), timeout=20)
        refused = answered(connections)
        assert refused == connections[MAX_CONNECTIONS:]  # exactly the limit is admitted

        head, body = read_answer(refused[0])
        assert head.startswith(b"HTTP/1.1 503 ")
        assert f"Retry-After: {RETRY_AFTER_S}".encode() in head
        assert json.loads(body) == {
            "error": "too_many_connections",
            "detail": f"the server holds as many connections as it may ({MAX_CONNECTIONS}); "
            f"retry in {RETRY_AFTER_S} s",
        }
        connections[0].sendall(request_head(len(IMAGE)) + IMAGE)
        assert connections[0].recv(65536).startswith(b"HTTP/1.1 200 ")

    assert eventually(lambda: post_webhook(capped_receiver.port, IMAGE) == 200, timeout=20)
    logs = capped_receiver.log.read_text()
    assert '"level": "error"' not in logs
    assert "MEDIAFLOW_WEBHOOK_MAX_CONNECTIONS" in logs  # the refusal's log line says what to raise
