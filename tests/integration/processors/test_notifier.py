"""The notifier against the real Kafka and a local receiver that verifies every signature."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mediaflow.cli import build_parser
from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.kafka import headers as h
from mediaflow.kafka.eventlog import event_record
from mediaflow.kafka.topics import load_layout
from tests.support.downloader import dead_letters
from tests.support.kafka import produce
from tests.support.notifier import (
    Receiver,
    described,
    fast_topics,
    receiving,
    registry,
    run_notifier,
)
from tests.support.projection import dead_lettered, detected, stored

pytestmark = pytest.mark.integration


def publish(settings: Settings, events: list) -> None:
    codec = AvroCodec()
    topic = load_layout(settings.kafka).media_events
    records = [event_record(topic, e, codec) for e in events]
    produce(settings, topic, [(r.key, r.value, r.headers) for r in records])


async def test_terminal_events_are_delivered_signed_once_each(
    make_settings: Callable[..., Settings], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with receiving(Receiver()) as receiver:
        tenants = registry(tmp_path, {"c1": {"callback_url": receiver.url("/hooks")}})
        settings = make_settings(topics_file=fast_topics(tmp_path), tenants_file=tenants)
        done = described(stored("m-stored", 5), "c1", message="wamid.S")
        lost = described(dead_lettered("m-lost", 6), "c1", message="wamid.L")
        elsewhere = described(stored("m-other-client", 7), "c2")
        publish(settings, [detected("m-stored"), done, lost, elsewhere])
        await run_notifier(settings, idle_exit_s=2)
        await run_notifier(settings, idle_exit_s=1.5)  # committed: nothing is sent again

    assert receiver.refused_signatures == 0
    by_id = {d.webhook_id: d.body for d in receiver.delivered}
    assert sorted(by_id) == sorted([done.event_id, lost.event_id])
    assert len(receiver.delivered) == 2
    stored_note = by_id[done.event_id]
    assert stored_note["type"] == "media.stored"
    data = stored_note["data"]
    assert (data["instance_id"], data["message_id"], data["media_id"]) == (
        "i1",
        "wamid.S",
        "m-stored",
    )
    assert (data["state"], data["key"], data["size"], data["sha256"]) == (
        "stored",
        done.key,
        done.size,
        done.sha256,
    )
    assert (
        f"/{settings.s3.bucket}/" in data["download_url"] or data["bucket"] in data["download_url"]
    )
    assert "X-Amz-Expires=" in data["download_url"] and data["download_url_expires_at"]
    lost_note = by_id[lost.event_id]
    assert lost_note["type"] == "media.dead_lettered"
    assert lost_note["data"]["error_kind"] == "retries_exhausted"
    assert not dead_letters(settings)
    # `mediaflow status` shows the notifier's group, caught up.
    capsys.readouterr()  # what the runs above printed
    args = build_parser().parse_args(["status", "--json", "--interval", "0"])
    assert args.handler(args, settings) == 0
    groups = json.loads(capsys.readouterr().out)["groups"]
    notifier = [g for g in groups if g["group"].endswith("mediaflow-notifier")]
    assert notifier and all(g["lag"] == 0 for g in notifier)


async def test_failing_endpoints_are_retried_then_dead_lettered_and_never_redirected(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    scripts = {"/flaky": [503, 200], "/broken": [500], "/moved": [307]}
    async with receiving(Receiver(scripts)) as receiver:
        allowed = {"callback_private": True}
        tenants = registry(
            tmp_path,
            {
                "flaky": {"callback_url": receiver.url("/flaky"), **allowed},
                "broken": {"callback_url": receiver.url("/broken"), **allowed},
                "moved": {"callback_url": receiver.url("/moved"), **allowed},
                # A name, not an address: refused when resolved, at each connection.
                "strict": {"callback_url": f"http://localhost:{receiver.port}/strict"},
            },
        )
        settings = make_settings(
            topics_file=fast_topics(tmp_path),
            tenants_file=tenants,
            allow_private_addresses="false",
        )
        events = {
            client: described(stored(f"m-{client}", 1), client)
            for client in ("flaky", "broken", "moved", "strict")
        }
        publish(settings, list(events.values()))
        await run_notifier(settings, idle_exit_s=4)

    assert [d.webhook_id for d in receiver.delivered] == [events["flaky"].event_id]
    assert receiver.hits["/flaky"] == 2  # a 503, then the same notification again
    assert receiver.hits["/broken"] == 3  # the first attempt and one per retry tier (two here)
    assert receiver.hits["/moved"] == 1 and "/elsewhere" not in receiver.hits
    assert "/strict" not in receiver.hits  # loopback, and this client has no allowance
    letters = {d[h.DLQ_MEDIA_ID]: d for d in dead_letters(settings)}
    assert set(letters) == {"m-broken", "m-moved", "m-strict"}
    assert {d[h.DLQ_STAGE] for d in letters.values()} == {"notifier"}
    assert letters["m-broken"][h.DLQ_ERROR_KIND] == "retries_exhausted"
    assert "answered 500" in letters["m-broken"][h.DLQ_ERROR_MESSAGE]
    assert letters["m-moved"][h.DLQ_ERROR_KIND] == "blocked_url"
    assert "redirected (307)" in letters["m-moved"][h.DLQ_ERROR_MESSAGE]
    assert letters["m-strict"][h.DLQ_ERROR_KIND] == "blocked_url"
    assert "loopback" in letters["m-strict"][h.DLQ_ERROR_MESSAGE]
