"""The receiver's tally reads as Prometheus counters and a histogram when scraped."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from mediaflow.events import Provider
from mediaflow.producers.webhook.metrics import WebhookTally


@pytest.fixture
def tally_and_registry() -> tuple[WebhookTally, CollectorRegistry]:
    tally = WebhookTally(buckets=(0.001, 0.01, 1))
    registry = CollectorRegistry()
    registry.register(tally)
    return tally, registry


def test_answers_are_counted_by_provider_and_status(
    tally_and_registry: tuple[WebhookTally, CollectorRegistry],
) -> None:
    tally, registry = tally_and_registry
    for status in (200, 200, 401):
        tally.answered(Provider.WAPI, status)
    tally.answered(Provider.ZAPI, 503)

    def count(provider: str, status: str) -> float | None:
        labels = {"provider": provider, "status": status}
        return registry.get_sample_value("mediaflow_webhook_requests_total", labels)

    assert (count("wapi", "200"), count("wapi", "401"), count("zapi", "503")) == (2, 1, 1)
    assert count("evolution", "200") is None


def test_accepted_bytes_and_produce_latency_fill_cumulative_buckets_bounds_included(
    tally_and_registry: tuple[WebhookTally, CollectorRegistry],
) -> None:
    tally, registry = tally_and_registry
    for seconds in (0.0005, 0.001, 0.002, 0.5, 3.0):
        tally.accepted(Provider.WAPI, 100, seconds)

    def bucket(le: str) -> float | None:
        return registry.get_sample_value("mediaflow_webhook_produce_seconds_bucket", {"le": le})

    assert [bucket(le) for le in ("0.001", "0.01", "1.0", "+Inf")] == [2, 3, 4, 5]
    assert registry.get_sample_value("mediaflow_webhook_produce_seconds_count") == 5
    assert registry.get_sample_value("mediaflow_webhook_produce_seconds_sum") == pytest.approx(
        3.5035
    )
    assert (
        registry.get_sample_value("mediaflow_webhook_request_bytes_total", {"provider": "wapi"})
        == 500
    )
    text = generate_latest(registry).decode()
    assert "# TYPE mediaflow_webhook_requests_total counter" in text
    assert "# TYPE mediaflow_webhook_produce_seconds histogram" in text
