"""Detector throughput: transactional vs non-transactional vs a bare consume-produce loop.

All three read the same ``n`` webhook envelopes from the same topic in the
same run (each with a consumer group of its own):

* ``transactional``: the detector as deployed (exactly-once, one transaction per batch);
* ``non_transactional``: the same worker and transform, ``WorkerOptions(transactional=False)``
  (outputs flushed, then offsets committed: at-least-once);
* ``bare``: consume and produce each value unchanged, no decoding, parsing or commits.

Each rate is measured from the first record fetched to the last one committed
(or flushed), so consumer-group joins and start-up are excluded.

Run: ``.venv/bin/python -m bench.bench_detector [n]`` (needs the local stack); the
result is printed and written to ``bench/results/detector.json``.
Target: transactional at least 0.5x non-transactional.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer

from bench._fresh import run_alone
from mediaflow.codec import AvroCodec
from mediaflow.config import REPO_ROOT, Settings
from mediaflow.events import WebhookReceived
from mediaflow.kafka import clients
from mediaflow.kafka import headers as h
from mediaflow.kafka.topics import TopicLayout, load_layout
from mediaflow.kafka.worker import Worker
from mediaflow.metrics import RECORDS_IN
from mediaflow.processors.detector.stage import STAGE, build_worker

PAYLOADS = REPO_ROOT / "tests" / "fixtures" / "payloads"
FIXTURES = ("wapi_image", "wapi_audio_ptt", "wapi_document", "wapi_video", "wapi_text")
DEFAULT_N = 20000
RESULT_FILE = REPO_ROOT / "bench" / "results" / "detector.json"


def _webhooks(n: int) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    codec = AvroCodec()
    bodies = [json.loads((PAYLOADS / f"{name}.json").read_text()) for name in FIXTURES]
    now = datetime.now(UTC).replace(microsecond=0)
    records = []
    for i in range(n):
        body = dict(bodies[i % len(bodies)], messageId=f"3EB0{i:016X}")
        event = WebhookReceived(
            event_id=str(uuid.uuid4()),
            provider="wapi",
            client_id="bench",
            instance_id=body["instanceId"],
            message_id=body["messageId"],
            chat_id=f"chat-{i % 97}",
            event_type=body["event"],
            received_at=now,
            body=json.dumps(body).encode(),
        )
        key = f"{event.instance_id}|{event.chat_id}".encode()
        records.append((key, codec.encode(event), h.encode({h.EVENT_ID: event.event_id})))
    return records


def _produce(settings: Settings, topic: str, n: int) -> None:
    producer = clients.producer(settings.kafka)
    for key, value, headers in _webhooks(n):
        while True:
            try:
                producer.produce(topic, value=value, key=key, headers=headers)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(60):
        raise RuntimeError("bench input not fully produced")


async def _time_worker(worker: Worker, topic: str, n: int) -> float:
    """Return seconds from the first record fetched to the n-th record committed."""
    fetched = RECORDS_IN.labels("detector", topic)
    baseline = fetched._value.get()
    run = asyncio.create_task(worker.run())
    started: float | None = None
    while worker.committed_records < n:
        if run.done():
            run.result()
            raise RuntimeError(f"worker stopped after {worker.committed_records} of {n}")
        if started is None and fetched._value.get() > baseline:
            started = time.perf_counter()
        await asyncio.sleep(0.002)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    worker.stop()
    await run
    return elapsed


def _time_bare(settings: Settings, layout: TopicLayout, n: int) -> float:
    consumer = clients.consumer(settings.kafka, f"{settings.kafka.topic_prefix}bench-bare")
    producer: Producer = clients.producer(settings.kafka)
    consumer.subscribe([layout.webhooks])
    seen, started = 0, None
    while seen < n:
        for message in consumer.consume(num_messages=1000, timeout=0.1):
            if message.error() is not None:
                continue
            started = started or time.perf_counter()
            while True:
                try:
                    producer.produce(layout.download_requests, message.value(), message.key())
                    break
                except BufferError:
                    producer.poll(0.1)
            seen += 1
        producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    return elapsed


def run(settings: Settings, n: int = DEFAULT_N) -> dict[str, Any]:
    """Produce ``n`` envelopes once, then time the three loops over them.

    Args:
        settings: a cluster and a topic prefix whose topics exist and are empty.
        n: envelopes (one in five is a text message with no media).

    Returns:
        events/s of each loop and the ratios transactional/non-transactional
        and transactional/bare.
    """
    layout = load_layout(settings.kafka)
    _produce(settings, layout.webhooks, n)
    rates: dict[str, float] = {}
    for mode, transactional in (("transactional", True), ("non_transactional", False)):
        mode_settings = dataclasses.replace(settings, instance_name=f"bench-{mode}")
        stage = dataclasses.replace(STAGE, group=f"bench-{mode}", transactional=transactional)
        worker = build_worker(mode_settings, stage.clients(mode_settings))
        rates[mode] = n / asyncio.run(_time_worker(worker, layout.webhooks, n))
    rates["bare"] = n / _time_bare(settings, layout, n)
    return {
        "n": n,
        "batch_max_records": settings.batch_max_records,
        "events_per_s": {k: round(v) for k, v in rates.items()},
        "transactional_vs_non_transactional": _ratio(rates, "non_transactional"),
        "transactional_vs_bare": _ratio(rates, "bare"),
    }


def _ratio(rates: dict[str, float], baseline: str) -> float:
    return round(rates["transactional"] / rates[baseline], 3)


def main(argv: list[str]) -> int:
    """Run on fresh bench topics of the local stack; print the result and save it as JSON."""
    return run_alone(run, argv, DEFAULT_N, RESULT_FILE)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
