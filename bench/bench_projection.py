"""Projection rebuild throughput vs a consume-only loop over the same media event log.

Both read the same ``n`` media events from the beginning of the same topic
to its end, in the same run:

* ``rebuild``: ``mediaflow projection rebuild`` as deployed (one process per
  CPU sharing the partitions; decode, apply, write to a fresh SQLite store in
  batches, swap it in), and the same with ``--workers 1``;
* ``consume_only``: the same consumer settings and batch size, counting
  records and nothing else (no decoding, no database);
* ``consume_decode``: consume and Avro-decode in one process, no database;
* ``consume_decode_plain``: consume and decode as the rebuild does
  (``AvroCodec.decode_plain``: no dataclasses, timestamps left as longs),
  CPU time only: not a ceiling, it shows what the rebuild's own work
  (folding, writing) costs on top of reading;
* ``consume_decode_all_workers``: the same in as many processes as the
  rebuild uses, sharing the partitions the way it does (processes started
  before the clock starts), best of 3 like the others.

Each reader's CPU time per event (this process, librdkafka's threads
included) is reported too for the one-process readers: on a machine whose
cores other work shares, ``rebuild_one_worker_cpu_vs_consume_decode`` is the
ratio that machine would show with its cores to itself.

Every event must at least be decoded, so ``consume_decode / consume_only`` is
the ceiling of any one-process rebuild, and ``consume_decode_all_workers /
consume_only`` the ceiling of any rebuild on this machine, however little it
did besides decoding. The rebuild decodes more cheaply than
``AvroCodec.decode`` (``decode_plain``); the ceilings stay the full decode
all the same, as the issue defines them. The size is large enough (200,000 events) that joining,
assigning and the first fetch do not dominate the baseline.

Run: ``.venv/bin/python -m bench.bench_projection [n]`` (needs the local stack).
Targets: rebuild at least 0.5x consume-only, and at least 0.8x its ceiling
(consume + decode in as many processes as the rebuild).
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from bench._fresh import fresh_stack
from mediaflow.codec import AvroCodec
from mediaflow.config import KafkaSettings, Settings
from mediaflow.events import (
    MediaDetected,
    MediaDownloadFailed,
    MediaInfo,
    MediaStored,
    MediaType,
)
from mediaflow.kafka import clients
from mediaflow.kafka.topics import load_layout
from mediaflow.logging import configure
from mediaflow.processors.projection.rebuild import (
    auto_workers,
    partition_sizes,
    rebuild,
    replay_consumer,
    split,
)

DEFAULT_N = 200_000


def _events(n: int) -> list[Any]:
    """About ``n`` events: each media is detected, one in four fails once, then it is stored."""
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    events: list[Any] = []
    i = 0
    while len(events) < n:
        media_id = f"bench-{i:08d}"
        at = t0 + timedelta(milliseconds=i * 10)
        events.append(
            MediaDetected(
                event_id=str(uuid.uuid4()),
                media_id=media_id,
                occurred_at=at,
                stage="detector",
                source_event_id=str(uuid.uuid4()),
                info=MediaInfo(
                    provider="wapi",
                    client_id=f"client-{i % 7}",
                    instance_id=f"inst-{i % 31}",
                    message_id=f"3EB0{i:016X}",
                    chat_id=f"chat-{i % 97}",
                    media_type=list(MediaType)[i % 5],
                    mimetype="image/jpeg",
                ),
            )
        )
        if i % 4 == 0:
            events.append(
                MediaDownloadFailed(
                    event_id=str(uuid.uuid4()),
                    media_id=media_id,
                    occurred_at=at + timedelta(seconds=1),
                    stage="downloader",
                    attempt=1,
                    error_kind="timeout",
                    error_message="read timed out",
                    retryable=True,
                    next_due_at=at + timedelta(seconds=11),
                )
            )
        events.append(
            MediaStored(
                event_id=str(uuid.uuid4()),
                media_id=media_id,
                occurred_at=at + timedelta(seconds=12),
                stage="downloader",
                bucket="media",
                key=f"cliente_{i % 7}/instance_{i % 31}/image/{media_id}.jpg",
                size=123_456,
                sha256="ab" * 32,
                content_type="image/jpeg",
                fetch_path="direct",
                duration_ms=80,
                attempt=2 if i % 4 == 0 else 1,
            )
        )
        i += 1
    return events[:n]


def _produce(settings: Settings, topic: str, n: int) -> None:
    codec = AvroCodec()
    producer = clients.producer(settings.kafka)
    for event in _events(n):
        while True:
            try:
                producer.produce(topic, value=codec.encode(event), key=event.media_id)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(60):
        raise RuntimeError("bench input not fully produced")


def _time_consume(
    kafka: KafkaSettings,
    topic: str,
    *,
    decode: bool,
    partitions: Sequence[int] | None = None,
    plain: bool = False,
) -> tuple[int, float]:
    """Read ``topic`` (or these of its partitions) from the beginning to the end.

    Args:
        decode: Avro-decode each record into its dataclass (``AvroCodec.decode``).
        plain: decode it as the rebuild does instead (``AvroCodec.decode_plain``).

    Returns:
        (records, seconds).
    """
    consumer = replay_consumer(kafka)  # the rebuild's own consumer settings
    codec = AvroCodec()
    if partitions is None:
        partitions = sorted(consumer.list_topics(topic, timeout=15).topics[topic].partitions)
    started = time.perf_counter()
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    remaining, seen = set(partitions), 0
    while remaining:
        for message in consumer.consume(5000, timeout=0.5):
            error = message.error()
            if error is None:
                if plain:
                    codec.decode_plain(message.value())
                elif decode:
                    codec.decode(message.value())
                seen += 1
            elif error.code() == KafkaError._PARTITION_EOF:
                remaining.discard(message.partition())
    elapsed = time.perf_counter() - started
    consumer.close()
    return seen, elapsed


def _time_parallel_decode(settings: Settings, topic: str, workers: int) -> float:
    """Consume and decode ``topic`` in ``workers`` processes at once; return events/s."""
    shares = split(partition_sizes(settings.kafka, topic), workers)
    context = multiprocessing.get_context("spawn")  # as the rebuild: no forked librdkafka
    with ProcessPoolExecutor(len(shares), mp_context=context) as pool:
        # Every process started and imported before the clock: this is a ceiling.
        answered: set[int] = set()
        while len(answered) < len(shares):
            answered.update(pool.map(_pid_after_a_moment, range(len(shares))))
        started = time.perf_counter()
        futures = [
            pool.submit(_time_consume, settings.kafka, topic, decode=True, partitions=share)
            for share in shares
        ]
        seen = sum(future.result()[0] for future in futures)
        return seen / (time.perf_counter() - started)


def _pid_after_a_moment(_index: int) -> int:
    time.sleep(0.2)  # so that one process does not take every call while the others start
    return os.getpid()


def run(settings: Settings, n: int = DEFAULT_N) -> dict[str, Any]:
    """Produce ``n`` media events once, then time the three readers over them.

    Args:
        settings: a cluster and a topic prefix whose topics exist and are empty.
        n: media events (detected, sometimes failed once, stored).

    Returns:
        events/s of each reader and the ratio rebuild/consume-only.
    """
    topic = load_layout(settings.kafka).media_events
    _produce(settings, topic, n)
    rates: dict[str, float] = {}
    cpu: dict[str, float] = {}
    # Warm the broker's page cache so that the first reader is not penalised.
    _time_consume(settings.kafka, topic, decode=False)
    # The baselines and ceilings are cheap to repeat: their best of three (a slow
    # moment of the machine would otherwise flatter the ratio, or lower the ceiling).
    readers = (("consume_only", False, False), ("consume_decode", True, False))
    readers += (("consume_decode_plain", False, True),)
    for name, decode, plain in readers:
        for _ in range(3):
            cpu_before = time.process_time()
            seen, seconds = _time_consume(settings.kafka, topic, decode=decode, plain=plain)
            rates[name] = max(rates.get(name, 0.0), seen / seconds)
            spent = (time.process_time() - cpu_before) / seen
            cpu[name] = min(cpu.get(name, spent), spent)
    processes = auto_workers(n)  # what `rebuild(workers=None)` below uses
    rates["consume_decode_all_workers"] = max(
        _time_parallel_decode(settings, topic, processes) for _ in range(3)
    )
    for name, workers in (("rebuild_one_worker", 1), ("rebuild", None)):
        with tempfile.TemporaryDirectory() as folder:
            db = Path(folder) / "projection.db"
            target = dataclasses.replace(settings, projection_db_url=f"sqlite:///{db}")
            started, cpu_before = time.perf_counter(), time.process_time()
            result = rebuild(target, workers=workers)
            rates[name] = result.events / (time.perf_counter() - started)
            if workers == 1:  # in this process: its CPU time is the rebuild's
                cpu[name] = (time.process_time() - cpu_before) / result.events
    return {
        "n": n,
        "store": "sqlite",
        "workers": processes,
        "events_per_s": {k: round(v) for k, v in rates.items()},
        "cpu_us_per_event": {k: round(v * 1e6, 1) for k, v in cpu.items()},
        "rebuild_one_worker_cpu_vs_consume_decode": round(
            cpu["consume_decode"] / cpu["rebuild_one_worker"], 3
        ),
        "rebuild_one_worker_cpu_vs_consume_only": round(
            cpu["consume_only"] / cpu["rebuild_one_worker"], 3
        ),
        "rebuild_vs_consume_only": round(rates["rebuild"] / rates["consume_only"], 3),
        "rebuild_vs_consume_decode": round(rates["rebuild"] / rates["consume_decode"], 3),
        "rebuild_vs_consume_decode_all_workers": round(
            rates["rebuild"] / rates["consume_decode_all_workers"], 3
        ),
        "rebuild_one_worker_vs_consume_decode": round(
            rates["rebuild_one_worker"] / rates["consume_decode"], 3
        ),
        "decode_ceiling_vs_consume_only": round(rates["consume_decode"] / rates["consume_only"], 3),
        "decode_ceiling_all_workers_vs_consume_only": round(
            rates["consume_decode_all_workers"] / rates["consume_only"], 3
        ),
    }


def main(argv: list[str]) -> int:
    """Run on fresh bench topics of the local stack and print the result as JSON."""
    n = int(argv[0]) if argv else DEFAULT_N
    settings = Settings.from_env()
    configure(fmt=settings.log_format, level="warning")
    with fresh_stack(settings) as fresh:
        print(json.dumps(run(fresh, n), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
