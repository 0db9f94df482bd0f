"""Many compressed bodies cannot blow up the receiver's memory, with or without a secret.

The attack (issue 25, item 1): 300 connections, each sending a gzip body of
about 1 KB that inflates to 1 MB, all but its 8-byte trailer, and holding the
connection open. Without a token, the receiver used to inflate every one of
them while waiting for the rest: from 75 MB resident to about 500 MB on the
test machine, for the whole body timeout. Now nobody's body is read before
their secret is known, so memory stays where it was. With a tenant's own
secret (an insider, a leaked secret) the bodies are read, but no more of them
at once than the in-flight body budget holds; the rest get 503.

Either way, a webhook from a real tenant sent in the middle of the attack is
recorded (200, and on Kafka) or answered 503 for its sender to retry: never
lost. The receiver is a real ``mediaflow run webhooks`` process on loopback.
"""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple

import pytest

from mediaflow.config import REPO_ROOT, Settings
from mediaflow.kafka.headers import to_dict
from mediaflow.kafka.topics import load_layout
from simulator.pipeline import free_port
from tests.support.connections import answered, hold
from tests.support.kafka import read_all
from tests.support.processes import spawn_role, stop
from tests.support.waiting import eventually
from tests.support.webhook import WAPI_SECRET, post_webhook, write_tenants

pytestmark = pytest.mark.integration

CONNECTIONS = 300
BOMB = gzip.compress(b" " * (1024 * 1024 - 64))
"""About 1 KB on the wire, just under the 1 MiB body limit once inflated."""

GROWTH_BOUND_MB = 100
"""How much the receiver's resident memory may grow under the attack.

Generous: the attack used to add over 400 MB; what remains is the
connections themselves (buffers, handlers), a few tens of kilobytes each.
"""

GIVE_UP_S = 30.0
"""The most the attack is held open waiting for the receiver to answer it."""

BUDGET_MB = 16
"""The receiver's in-flight body budget here: a quarter of the default, so that it shows."""

BODY_TIMEOUT_S = 3.0
"""How long the receiver waits for the trailers that never come (408 after)."""

IMAGE = (REPO_ROOT / "tests" / "fixtures" / "payloads" / "wapi_image.json").read_bytes()


class Receiver(NamedTuple):
    pid: int
    port: int
    settings: Settings


@pytest.fixture
def receiver(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[Receiver]:
    port = free_port()
    settings = make_settings(
        tenants_file=write_tenants(tmp_path),
        webhook_port=port,
        webhook_body_budget_bytes=BUDGET_MB * 1024 * 1024,
        webhook_body_timeout_s=BODY_TIMEOUT_S,
    )
    process = spawn_role("webhooks", settings)
    try:
        assert eventually(lambda: post_webhook(port, IMAGE) == 200, timeout=30), (
            "the receiver did not start"
        )
        yield Receiver(process.pid, port, settings)
    finally:
        assert stop(process) == 0


def resident_mb(pid: int) -> float:
    """The process's resident memory (VmRSS), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    kilobytes = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(kilobytes) / 1024


def attack_head(port: int, query: str) -> bytes:
    return (
        f"POST /webhooks/wapi{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
        f"Content-Length: {len(BOMB)}\r\n\r\n"
    ).encode()


def honest_webhook(port: int) -> tuple[int, dict]:
    """POST a real tenant's webhook; return its status and JSON answer."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/wapi?token={WAPI_SECRET}",
        data=IMAGE,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=GIVE_UP_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Outcome(NamedTuple):
    idle_mb: float
    peak_mb: float
    answers: Counter[bytes]
    """The attackers' answers by status line, e.g. ``b"HTTP/1.1 401"``."""
    honest: tuple[int, dict]


def attack(receiver: Receiver, query: str) -> Outcome:
    """Run the attack with ``query`` on every request, and a real webhook in the middle of it.

    Resident memory is sampled from before the first connection until the
    receiver has answered every attacker (or :data:`GIVE_UP_S` passed).
    """
    idle = resident_mb(receiver.pid)
    peak = idle
    with ExitStack() as held:
        connections = hold(held, receiver.port, CONNECTIONS)
        for connection in connections:
            connection.sendall(attack_head(receiver.port, query) + BOMB[:-8])  # no trailer
            peak = max(peak, resident_mb(receiver.pid))

        honest = honest_webhook(receiver.port)

        deadline = time.monotonic() + GIVE_UP_S
        while len(answered(connections)) < CONNECTIONS and time.monotonic() < deadline:
            peak = max(peak, resident_mb(receiver.pid))
            time.sleep(0.05)
        answers = Counter(c.recv(12) for c in answered(connections))
    peak = max(peak, resident_mb(receiver.pid))
    return Outcome(idle, peak, answers, honest)


def assert_not_lost(receiver: Receiver, honest: tuple[int, dict]) -> None:
    """The real webhook was refused for its sender to retry, or it is on Kafka."""
    status, answer = honest
    assert status in (200, 503), answer
    if status == 200:
        topic = load_layout(receiver.settings.kafka).webhooks
        records = read_all(receiver.settings, topic)
        assert answer["event_id"] in {to_dict(r.headers())["mediaflow.event-id"] for r in records}


def test_unauthenticated_gzip_bodies_leave_memory_flat_and_lose_no_webhook(
    receiver: Receiver,
) -> None:
    outcome = attack(receiver, "")

    growth = outcome.peak_mb - outcome.idle_mb
    assert growth < GROWTH_BOUND_MB, f"resident {outcome.idle_mb:.0f} -> {outcome.peak_mb:.0f} MB"
    assert outcome.answers == {b"HTTP/1.1 401": CONNECTIONS}
    assert_not_lost(receiver, outcome.honest)


def test_a_tenants_own_secret_cannot_take_more_than_the_body_budget(receiver: Receiver) -> None:
    # An insider (or a leaked secret): every body is read, and inflated, but
    # only as far as the budget holds; the rest are told to come back later.
    outcome = attack(receiver, f"?token={WAPI_SECRET}")

    growth = outcome.peak_mb - outcome.idle_mb
    bound = BUDGET_MB + GROWTH_BOUND_MB
    assert growth < bound, f"resident {outcome.idle_mb:.0f} -> {outcome.peak_mb:.0f} MB"
    assert set(outcome.answers) == {b"HTTP/1.1 503", b"HTTP/1.1 408"}  # busy, or never finished
    assert outcome.answers[b"HTTP/1.1 408"] <= BUDGET_MB  # about a megabyte each
    assert_not_lost(receiver, outcome.honest)
