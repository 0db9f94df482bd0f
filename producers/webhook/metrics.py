"""Prometheus metrics of the webhook receiver (labels: provider and status only).

One process serves ``/metrics`` from prometheus_client's default registry.
Several workers (``serve webhooks --workers N``) share one port, so a scrape
reaches whichever worker the kernel picks: they run in prometheus_client's
multiprocess mode, each writing its metrics to files in one private directory
(:func:`shared_directory`, made by the process that starts them), and every
worker's ``/metrics`` adds up all the files (:func:`exposition`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from mediaflow.events import Provider

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's switch to multiprocess mode, read once, when it is imported."""

PRODUCE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
"""Upper bounds (seconds) of the produce latency histogram."""

REQUESTS = Counter(
    "mediaflow_webhook_requests", "Webhook requests by answer", ["provider", "status"]
)
REQUEST_BYTES = Counter(
    "mediaflow_webhook_request_bytes", "Webhook body bytes accepted", ["provider"]
)
PRODUCE_SECONDS = Histogram(
    "mediaflow_webhook_produce_seconds",
    "Time from produce to the broker's acknowledgement",
    buckets=PRODUCE_BUCKETS,
)
# livesum: across workers, the sum over the processes alive (a dead one's value goes).
IN_FLIGHT = Gauge(
    "mediaflow_webhook_in_flight", "Webhook requests being handled", multiprocess_mode="livesum"
)
BODY_BYTES_IN_FLIGHT = Gauge(
    "mediaflow_webhook_body_bytes_in_flight",
    "Bytes of webhook bodies held in memory: read, not yet on Kafka",
    multiprocess_mode="livesum",
)


class Recorder:
    """The two updates of each webhook, with the labelled series looked up once.

    ``Counter.labels()`` checks and converts its values under a lock on every
    call; a webhook's provider and status take a dict lookup here instead.
    """

    def __init__(self) -> None:
        self._answers: dict[tuple[Provider, int], Counter] = {}
        self._bytes = {provider: REQUEST_BYTES.labels(provider.value) for provider in Provider}

    def answered(self, provider: Provider, status: int) -> None:
        """Count one webhook answered with ``status``."""
        series = self._answers.get((provider, status))
        if series is None:
            series = self._answers[provider, status] = REQUESTS.labels(provider.value, str(status))
        series.inc()

    def accepted(self, provider: Provider, body_bytes: int, produce_seconds: float) -> None:
        """Count one webhook's body and how long the broker took to acknowledge it."""
        self._bytes[provider].inc(body_bytes)
        PRODUCE_SECONDS.observe(produce_seconds)


def _scraped_registry() -> CollectorRegistry:
    # The variable prometheus_client chose its mode by when it was imported, above.
    directory = os.environ.get(MULTIPROCESS_VARIABLE)
    if directory is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return registry


SCRAPED = _scraped_registry()
"""What ``/metrics`` shows: this process's metrics, or in multiprocess mode every worker's."""


def exposition() -> bytes:
    """Return the text ``/metrics`` answers (:data:`CONTENT_TYPE_LATEST`)."""
    return generate_latest(SCRAPED)


@contextlib.contextmanager
def shared_directory() -> Iterator[Path]:
    """Put the worker processes started inside the block in multiprocess mode.

    Makes a private directory, names it in ``PROMETHEUS_MULTIPROC_DIR`` for the
    processes started inside the block (they must be new interpreters, which
    import prometheus_client with it set), and removes it with everything in it
    at the end of the block.
    """
    directory = tempfile.mkdtemp(prefix="mediaflow-webhook-metrics-")
    previous = os.environ.get(MULTIPROCESS_VARIABLE)
    os.environ[MULTIPROCESS_VARIABLE] = directory
    try:
        yield Path(directory)
    finally:
        if previous is None:
            del os.environ[MULTIPROCESS_VARIABLE]
        else:
            os.environ[MULTIPROCESS_VARIABLE] = previous
        shutil.rmtree(directory, ignore_errors=True)


def worker_exited(pid: int) -> None:
    """Drop the gauges of a worker that exited (its counters still count)."""
    multiprocess.mark_process_dead(pid)


__all__ = [
    "BODY_BYTES_IN_FLIGHT",
    "CONTENT_TYPE_LATEST",
    "IN_FLIGHT",
    "MULTIPROCESS_VARIABLE",
    "PRODUCE_BUCKETS",
    "PRODUCE_SECONDS",
    "REQUESTS",
    "REQUEST_BYTES",
    "SCRAPED",
    "Recorder",
    "exposition",
    "shared_directory",
    "worker_exited",
]
