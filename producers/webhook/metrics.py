"""Prometheus metrics of the webhook receiver (labels: provider and status only)."""

from __future__ import annotations

import functools
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from mediaflow.events import Provider

REQUESTS = Counter(
    "mediaflow_webhook_requests_total", "Webhook requests by answer", ["provider", "status"]
)
REQUEST_BYTES = Counter(
    "mediaflow_webhook_request_bytes_total", "Webhook body bytes accepted", ["provider"]
)
IN_FLIGHT = Gauge("mediaflow_webhook_in_flight", "Webhook requests being handled")
PRODUCE_SECONDS = Histogram(
    "mediaflow_webhook_produce_seconds",
    "Time from produce to the broker's acknowledgement",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


# The labelled children are looked up once: ``labels()`` takes a lock and
# validates its arguments, a measurable cost at thousands of requests a second.
@functools.cache
def requests(provider: Provider, status: int) -> Any:
    """The request counter of one provider and HTTP status."""
    return REQUESTS.labels(provider.value, str(status))


@functools.cache
def request_bytes(provider: Provider) -> Any:
    """The accepted-bytes counter of one provider."""
    return REQUEST_BYTES.labels(provider.value)


__all__ = [
    "IN_FLIGHT",
    "PRODUCE_SECONDS",
    "REQUESTS",
    "REQUEST_BYTES",
    "request_bytes",
    "requests",
]
