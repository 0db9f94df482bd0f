"""Prometheus metrics shared by every stage.

Labels never carry secrets or unbounded values (no media ids, no URLs):
stage, topic, error kind, media type, client and instance ids only.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS_IN = Counter("mediaflow_records_in_total", "Records consumed", ["stage", "topic"])
RECORDS_OUT = Counter("mediaflow_records_out_total", "Records produced", ["stage", "topic"])
OUTCOMES = Counter(
    "mediaflow_outcomes_total", "Record outcomes by stage", ["stage", "outcome", "kind"]
)
DEAD_LETTERS = Counter("mediaflow_dead_letters_total", "Dead letters written", ["stage", "kind"])
IN_FLIGHT = Gauge("mediaflow_in_flight", "Records being processed", ["stage"])
WAITING = Gauge("mediaflow_waiting_records", "Records fetched, not yet started", ["stage", "topic"])
COMMIT_SECONDS = Histogram(
    "mediaflow_commit_seconds",
    "Transaction commit latency",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_LAG = Gauge(
    "mediaflow_consumer_lag", "Consumer lag per partition", ["group", "topic", "partition"]
)
MEDIA_DETECTED = Counter(
    "mediaflow_media_detected_total", "Media found in webhooks", ["media_type"]
)
DOWNLOADS = Counter(
    "mediaflow_downloads_total",
    "Download outcomes",
    ["outcome", "kind", "media_type", "client_id", "instance_id"],
)
DOWNLOAD_BYTES = Counter("mediaflow_download_bytes_total", "Bytes stored", ["media_type"])
DOWNLOAD_SECONDS = Histogram(
    "mediaflow_download_seconds",
    "Time to fetch, verify and store one media",
    ["media_type", "fetch_path"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
STORAGE_WAITS = Counter(
    "mediaflow_storage_waits_total",
    "Times a download waited for the storage, by cause (unreachable, credentials, ...)",
    ["cause"],
)
CONNECTIONS_REFUSED = Counter(
    "mediaflow_http_connections_refused_total",
    "HTTP connections answered 503: the open-files or the connection limit was reached",
    ["role"],
)

__all__ = [
    "COMMIT_SECONDS",
    "CONNECTIONS_REFUSED",
    "CONSUMER_LAG",
    "DEAD_LETTERS",
    "DOWNLOADS",
    "DOWNLOAD_BYTES",
    "DOWNLOAD_SECONDS",
    "IN_FLIGHT",
    "MEDIA_DETECTED",
    "OUTCOMES",
    "RECORDS_IN",
    "RECORDS_OUT",
    "STORAGE_WAITS",
    "WAITING",
]
