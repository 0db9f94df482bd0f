"""Notifier throughput: signed callbacks/s against a local receiver, vs a plain aiohttp client.

Both post the same ``n`` notification bodies to the same receiver (a child
process answering 204 to every POST, so that its cost does not land on the
measured side's core), ``concurrency`` requests in flight:

* ``notifier``: the stage as deployed, reading ``n`` ``MediaStored`` events from
  ``media.events``, signing each (Standard Webhooks), posting it through the
  guarded sessions and committing its offset in a Kafka transaction; timed
  from the first record fetched to the n-th committed;
* ``plain``: an ``aiohttp.ClientSession`` posting the same bodies, unsigned,
  with no Kafka at all.

Run: ``.venv/bin/python -m bench.bench_notifier [n]`` (needs the local stack); the
result is printed and written to ``bench/results/notifier.json``. Reported, no target.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench._fresh import run_alone
from mediaflow.codec import AvroCodec
from mediaflow.config import REPO_ROOT, Settings
from mediaflow.events import MediaInfo, MediaStored, MediaType
from mediaflow.kafka import clients
from mediaflow.kafka.eventlog import event_record
from mediaflow.kafka.topics import load_layout
from mediaflow.kafka.worker import Worker
from mediaflow.metrics import RECORDS_IN
from mediaflow.processors.notifier.payload import notification
from mediaflow.processors.notifier.stage import STAGE

DEFAULT_N = 5000
RESULT_FILE = REPO_ROOT / "bench" / "results" / "notifier.json"
SECRET = "whsec_YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2g="
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _events(n: int) -> list[MediaStored]:
    return [
        MediaStored(
            event_id=f"bench-{i:08d}",
            media_id=f"m{i:08d}",
            occurred_at=NOW,
            stage="downloader",
            bucket="media",
            key=f"cliente_bench/instance_i1/image/2026/11/28/3EB0{i:016X}-abcdef012345.jpg",
            size=48213,
            sha256="ab" * 32,
            content_type="image/jpeg",
            fetch_path="direct",
            duration_ms=12,
            attempt=1,
            info=MediaInfo(
                provider="wapi",
                client_id="bench",
                instance_id="i1",
                message_id=f"3EB0{i:016X}",
                chat_id="5511999999999@c.us",
                sender_id="5511888888888",
                media_type=MediaType.IMAGE,
                mimetype="image/jpeg",
            ),
        )
        for i in range(n)
    ]


def _serve_receiver(port: int) -> None:
    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks", accept)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the bench receiver did not start")


def _produce(settings: Settings, events: list[MediaStored]) -> None:
    codec = AvroCodec()
    topic = load_layout(settings.kafka).media_events
    producer = clients.producer(settings.kafka)
    for event in events:
        record = event_record(topic, event, codec)
        while True:
            try:
                producer.produce(topic, record.value, record.key, headers=record.headers)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(60):
        raise RuntimeError("bench input not fully produced")


async def _time_notifier(settings: Settings, n: int) -> float:
    topic = load_layout(settings.kafka).media_events
    fetched = RECORDS_IN.labels(STAGE.name, topic)
    baseline = fetched._value.get()
    async with STAGE.open(settings, STAGE.clients(settings)) as worker:
        assert isinstance(worker, Worker)
        run = asyncio.create_task(worker.run())
        started: float | None = None
        while worker.committed_records < n:
            if run.done():
                run.result()
                raise RuntimeError(f"notifier stopped after {worker.committed_records} of {n}")
            if started is None and fetched._value.get() > baseline:
                started = time.perf_counter()
            await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - (started or time.perf_counter())
        worker.stop()
        await run
    return elapsed


async def _time_plain(url: str, bodies: list[bytes], concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def post(body: bytes) -> None:
            async with gate, session.post(url, data=body, headers=headers) as response:
                if response.status != 204:
                    raise RuntimeError(f"receiver answered {response.status}")

        started = time.perf_counter()
        await asyncio.gather(*(post(b) for b in bodies))
        return time.perf_counter() - started


def run(settings: Settings, n: int = DEFAULT_N) -> dict[str, Any]:
    """Time the notifier and the plain client over the same ``n`` notifications.

    Args:
        settings: a cluster and a topic prefix whose topics exist and are empty.
        n: notifications (each a stored image of one client).

    Returns:
        callbacks/s of each and the ratio notifier/plain.
    """
    port = _free_port()
    url = f"http://127.0.0.1:{port}/hooks"
    receiver = multiprocessing.get_context("spawn").Process(
        target=_serve_receiver, args=(port,), daemon=True
    )
    receiver.start()
    try:
        _wait_listening(port)
        events = _events(n)
        _produce(settings, events)
        bodies = [note.body for e in events if (note := notification(e, _no_link))]
        with tempfile.TemporaryDirectory(prefix="bench-notifier-") as scratch:
            secret = Path(scratch) / "callback.secret"
            secret.write_text(SECRET)
            registry = Path(scratch) / "tenants.toml"
            registry.write_text(
                f'[clients."bench"]\ncallback_url = "{url}"\ncallback_private = true\n'
                f'callback_secret_file = "{secret}"\n'
            )
            notifier = dataclasses.replace(settings, tenants_file=registry)
            rates = {"notifier": n / asyncio.run(_time_notifier(notifier, n))}
        rates["plain"] = n / asyncio.run(_time_plain(url, bodies, settings.notifier_concurrency))
    finally:
        receiver.terminate()
        receiver.join(10)
    return {
        "n": n,
        "concurrency": settings.notifier_concurrency,
        "callbacks_per_s": {k: round(v) for k, v in rates.items()},
        "notifier_vs_plain": round(rates["notifier"] / rates["plain"], 3),
    }


def _no_link(event: MediaStored, _info: MediaInfo) -> tuple[str, datetime]:
    return f"http://s3.invalid/{event.bucket}/{event.key}", NOW


def main(argv: list[str]) -> int:
    """Run on fresh bench topics of the local stack; print the result and save it as JSON."""
    return run_alone(run, argv, DEFAULT_N, RESULT_FILE)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
