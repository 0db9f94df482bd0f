"""Every record on the media event log carries the same headers, whichever stage wrote it.

Detector, downloader and operator commands each write events to
``media.events``; a consumer must be able to read the event id, the schema
fingerprint and the trace context of any of them from the headers alone, and
the error of a failure event without decoding it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mediaflow.events import MediaDeadLettered, MediaDownloadFailed, MediaRedriven
from mediaflow.kafka import headers as h
from mediaflow.kafka.topics import load_layout
from mediaflow.logging import scrub
from mediaflow.ops import dismiss, dlq, redrive
from mediaflow.processors.detector import build_worker
from simulator import Faults, MediaLibrary, running_simulator
from tests.support.detector import CODEC, as_record, envelope, image_body
from tests.support.downloader import (
    INSTANCE,
    TOKEN,
    request_for,
    run_downloader,
    send,
    settings_for,
)
from tests.support.downloader import tenants_file as downloader_tenants
from tests.support.kafka import produce, read_all

pytestmark = pytest.mark.integration

PAYLOADS = Path(__file__).resolve().parents[2] / "fixtures" / "payloads"
COMMON = {h.EVENT_ID, h.SCHEMA_FINGERPRINT, h.TRACEPARENT}


async def test_every_event_of_every_stage_carries_the_same_headers(make_settings, tmp_path):
    library = MediaLibrary(seed=6, max_size=20_000)
    stored, expired, flaky = (library.make("image") for _ in range(3))
    faults = Faults(expired={expired.cdn_id})
    faults.script("cdn", flaky.cdn_id, [500])
    async with running_simulator(library, faults, {INSTANCE: TOKEN}) as sim:
        tenants = downloader_tenants(tmp_path, fetch_order=["direct"])
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants)
        layout = load_layout(settings.kafka)
        # The detector: a media (its download then fails: the CDN does not know it)
        # and a media that can never be downloaded (dead-lettered by the detector).
        bad_key = json.loads((PAYLOADS / "wapi_media_key_wrong_length.json").read_text())
        webhooks = [
            envelope(image_body("3EB0C767D26A1B2C4F8E")),
            envelope(json.dumps(bad_key).encode()),
        ]
        produce(settings, layout.webhooks, [as_record(w) for w in webhooks])
        await build_worker(settings).run(idle_exit_s=2)
        # The downloader: stored, failed once then stored, expired.
        send(settings, [request_for(m) for m in (stored, expired, flaky)])
        await run_downloader(settings, idle_exit_s=3)
    # The operator: redrive one dead letter, dismiss the others.
    views = [v for v in dlq.read_dead_letters(settings, layout, CODEC) if v.media_id]
    plan = redrive.plan_redrive(views[:1], layout, operator="ana")
    assert redrive.execute_redrive(settings, layout, CODEC, plan) == 1
    dismissed = [dismiss.dismissed_event(v, "ana", "spam") for v in views[1:]]
    assert dismiss.execute_dismiss(settings, layout, CODEC, [e for e in dismissed if e]) >= 1

    stages = set()
    for message in read_all(settings, layout.media_events):
        event = CODEC.decode(message.value())
        headers = h.to_dict(message.headers())
        stages.add(event.stage)
        expected = set(COMMON)
        if isinstance(event, MediaDownloadFailed | MediaDeadLettered):
            expected |= {h.ERROR_KIND, h.ERROR}
            assert headers[h.ERROR_KIND] == event.error_kind
            assert headers[h.ERROR] == scrub(event.error_message)[:1000]
        if isinstance(event, MediaRedriven):
            expected |= {h.REDRIVE_ID}
        assert set(headers) == expected, (type(event).__name__, event.stage, headers)
        assert headers[h.EVENT_ID] == event.event_id
        assert headers[h.SCHEMA_FINGERPRINT] == CODEC.fingerprint_of(type(event)).hex()
        assert headers[h.TRACEPARENT] == event.traceparent
        assert message.key() == event.media_id.encode()
    assert stages == {"detector", "downloader", "operator"}
