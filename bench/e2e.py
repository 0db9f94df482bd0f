"""End to end: a sustained webhook rate with media through the whole pipeline.

The fake W-API and CDN serve the media; every role runs as a child process on
a fresh run (:class:`simulator.pipeline.Run`). Webhooks are posted at a fixed
rate for ``duration_s``; then the run waits until every media is terminal.
Meanwhile a sampler records, every ``SAMPLE_S``, each stage's consumer lag
and how many media are stored. Results: throughput, latency percentiles
webhook accepted -> stored, lag over time (bounded = it drains to 0 after the
load stops (up to one transaction marker per partition), and its peak stays
below the work offered in ``LAG_BOUND_S``). Sending starts once every consumer
owns its partitions, so group joins are not charged to the pipeline. The
notifier runs too, calling back a local receiver that verifies every
signature (:mod:`simulator.callbacks`): latency webhook accepted -> callback
received, for every media stored or dead-lettered.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mediaflow.config import Settings
from mediaflow.kafka.clients import admin_client
from mediaflow.kafka.scan import partitions_of, throwaway_consumer, watermarks
from mediaflow.kafka.topics import load_layout
from mediaflow.processors.detector.stage import STAGE as DETECTOR
from mediaflow.processors.downloader.stage import STAGE as DOWNLOADER
from mediaflow.tenants import TenantRegistry
from simulator.callbacks import CallbackReceiver, new_secret, wait_callbacks, with_callbacks
from simulator.faults import Faults
from simulator.media import MediaLibrary
from simulator.pipeline import ROLES, Pipeline, Run, terminal_rows, wait_terminal
from simulator.report import TERMINAL, accepted_at, latencies_s, percentile
from simulator.sender import send_webhooks
from simulator.servers import SimulatorThread
from simulator.webhooks import WebhookFactory

SAMPLE_S = 2.0
LAG_BOUND_S = 10.0
MAX_MEDIA_BYTES = 300_000
DRAIN_TIMEOUT_S = 120.0
CALLBACK_TIMEOUT_S = 60.0


class LagSampler(threading.Thread):
    """Samples each stage's lag and the stored count every ``SAMPLE_S`` until stopped."""

    def __init__(self, run: Run, media_ids: set[str]) -> None:
        """Prepare the sampler for ``run`` (media ids may grow while sending)."""
        super().__init__(name="bench-lag-sampler", daemon=True)
        self.run_ = run
        self.media_ids = media_ids
        self.samples: list[dict[str, Any]] = []
        self._stop_event = threading.Event()

    def stop(self) -> None:
        """Stop sampling and wait for the thread."""
        self._stop_event.set()
        self.join(timeout=30)

    def run(self) -> None:
        settings = self.run_.settings
        layout = load_layout(settings.kafka)
        admin = admin_client(settings.kafka)
        consumer = throwaway_consumer(settings.kafka)
        store = self.run_.open_store()
        started = time.monotonic()
        try:
            while not self._stop_event.is_set():
                highs = _highs(consumer, layout)
                lag = {
                    "detector": _group_lag(
                        admin, DETECTOR.clients(settings).group_id, highs, {layout.webhooks}
                    ),
                    "downloader": _group_lag(
                        admin,
                        DOWNLOADER.clients(settings).group_id,
                        highs,
                        {layout.download_requests, *(t.topic for t in layout.retry_tiers)},
                    ),
                    "projection": _store_lag(store.offsets(layout.media_events), highs, layout),
                }
                _, done = terminal_rows(store, set(self.media_ids), TERMINAL)
                self.samples.append(
                    {"t": round(time.monotonic() - started, 2), "lag": lag, "terminal": done}
                )
                self._stop_event.wait(SAMPLE_S)
        finally:
            consumer.close()
            store.close()


def _highs(consumer: Any, layout: Any) -> dict[tuple[str, int], int]:
    highs = {}
    for spec in layout.specs:
        for partition in partitions_of(consumer, spec.name):
            highs[(spec.name, partition)] = watermarks(consumer, spec.name, partition)[1]
    return highs


def _store_lag(offsets: dict[int, int], highs: dict[tuple[str, int], int], layout: Any) -> int:
    return sum(
        max(0, h - offsets.get(p, 0)) for (t, p), h in highs.items() if t == layout.media_events
    )


def _group_lag(admin: Any, group: str, highs: dict[tuple[str, int], int], topics: set[str]) -> int:
    from confluent_kafka import ConsumerGroupTopicPartitions

    future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group]
    committed = {
        (tp.topic, tp.partition): tp.offset
        for tp in (future.result(10).topic_partitions or [])
        if tp.topic in topics and tp.offset >= 0
    }
    return sum(max(0, h - committed.get(tp, 0)) for tp, h in highs.items() if tp[0] in topics)


def run(
    settings: Settings,
    rate: float = 10.0,
    duration_s: float = 60.0,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Post ``rate`` webhooks/s for ``duration_s`` through the pipeline; measure it.

    Args:
        settings: where the stack is (and the tenants file with the demo secrets).
        rate: webhooks per second offered.
        duration_s: how long the rate is held.
        environ: the environment the roles start from (demo secrets); ``os.environ`` if omitted.

    Returns:
        throughput, latency percentiles, lag samples and per-second series for plots.

    """
    registry = TenantRegistry.load(settings.tenants_file, environ)
    secrets = {i: t.webhook_secret.reveal() for i, t in registry.tenants.items()}
    tokens = {i: t.wapi_token.reveal() for i, t in registry.tenants.items() if t.wapi_token}
    library = MediaLibrary(11, max_size=MAX_MEDIA_BYTES)
    secret = new_secret()
    with (
        SimulatorThread(library, Faults(seed=11), tokens) as sim,
        CallbackReceiver(secret) as receiver,
    ):
        run_ = Run.create("bench", wapi_url=sim.wapi_url, cdn_url=sim.cdn_url, environ=environ)
        run_ = with_callbacks(run_, receiver.url, secret)
        factory = WebhookFactory(library, cdn_url=sim.cdn_url, files_url=sim.wapi_url, seed=11)
        batch = factory.mixed(round(rate * duration_s))
        run_.prepare()
        media_ids: set[str] = set()
        with Pipeline(run_, (*ROLES, "notifier")) as pipeline:
            pipeline.wait_assigned()
            sampler = LagSampler(run_, media_ids)
            sampler.start()
            sent_at = time.time()
            summary = asyncio.run(
                send_webhooks(batch, base_url=run_.webhook_url, secrets=secrets, rate=rate)
            )
            media_ids.update(summary.media_ids() | summary.invalid_media_ids())
            rows, _done = wait_terminal(run_, media_ids, TERMINAL, DRAIN_TIMEOUT_S, poll_s=1.0)
            drained_at = time.time()
            # Media the detector refused have no client to call back.
            told = {r.media_id for r in rows.values() if r and r.status in TERMINAL and r.client_id}
            wait_callbacks(receiver, told, CALLBACK_TIMEOUT_S)
            time.sleep(SAMPLE_S * 1.5)  # one more lag sample after the drain
            sampler.stop()
        run_.discard()
    result = _result(rate, duration_s, summary, rows, sent_at, drained_at, sampler.samples, run_)
    return result | _callbacks(summary, receiver, told)


def _callbacks(summary: Any, receiver: CallbackReceiver, told: set[str]) -> dict[str, Any]:
    """Latency webhook accepted -> signed callback received, and how many arrived."""
    accepted = accepted_at(summary.deliveries)
    latency = [
        max(0.0, at - accepted[media_id])
        for media_id, at in receiver.received_at.items()
        if media_id in told and media_id in accepted
    ]
    return {
        "callbacks": {
            "expected": len(told),
            "delivered": len(receiver.media_ids() & told),
            "refused_signatures": receiver.refused,
        },
        "callback_latency_ms": {
            f"p{int(q * 100)}": round(1000 * percentile(latency, q)) for q in (0.5, 0.95, 0.99)
        },
    }


def _result(
    rate: float,
    duration_s: float,
    summary: Any,
    rows: dict[str, Any],
    sent_at: float,
    drained_at: float,
    samples: list[dict[str, Any]],
    run_: Run,
) -> dict[str, Any]:
    present = [r for r in rows.values() if r is not None]
    stored = [r for r in present if r.status == "stored"]
    accepted = accepted_at(summary.deliveries)
    latency = latencies_s(present, accepted)
    stored_per_s = Counter(int(r.stored_at / 1000 - sent_at) for r in stored)
    accepted_per_s = Counter(int(d.answered_at - sent_at) for d in summary.accepted)
    latency_by_s: dict[int, list[float]] = {}
    for media_id, seconds in latency.items():
        latency_by_s.setdefault(int(accepted[media_id] - sent_at), []).append(seconds)
    peak_lag = max((sum(s["lag"].values()) for s in samples), default=0)
    final_lag = sum(samples[-1]["lag"].values()) if samples else None
    # Transactional writers leave one commit marker per partition after the last
    # record: a drained consumer sits one offset below the high watermark there.
    markers = sum(s.partitions for s in load_layout(run_.settings.kafka).specs)
    elapsed = max(drained_at - sent_at, 1e-9)
    return {
        "run_id": run_.run_id,
        "rate_offered": rate,
        "duration_s": duration_s,
        "webhooks": len(summary.deliveries),
        "accepted": len(summary.accepted),
        "media": len(rows),
        "stored": len(stored),
        "terminal": sum(1 for r in present if r.status in TERMINAL),
        "stored_per_s": round(len(stored) / elapsed, 2),
        "latency_ms": {
            f"p{int(q * 100)}": round(1000 * percentile(list(latency.values()), q))
            for q in (0.5, 0.95, 0.99)
        },
        "lag": {
            "peak": peak_lag,
            "final": final_lag,
            "bound": round(rate * LAG_BOUND_S),
            "bounded": final_lag is not None
            and final_lag <= markers
            and peak_lag <= rate * LAG_BOUND_S,
        },
        "series": {
            "accepted_per_s": sorted(accepted_per_s.items()),
            "stored_per_s": sorted(stored_per_s.items()),
            "latency_p50_ms_by_s": [
                (s, round(1000 * percentile(v, 0.5))) for s, v in sorted(latency_by_s.items())
            ],
            "latency_p99_ms_by_s": [
                (s, round(1000 * percentile(v, 0.99))) for s, v in sorted(latency_by_s.items())
            ],
            "lag": samples,
        },
    }


def plot(result: dict[str, Any], directory: Path) -> list[Path]:
    """Write throughput, latency and lag over time as PNGs; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = result["series"]
    paths = []
    charts = [
        (
            "e2e_throughput.png",
            "Throughput (per second)",
            [
                ("webhooks accepted", series["accepted_per_s"]),
                ("media stored", series["stored_per_s"]),
            ],
            "per second",
        ),
        (
            "e2e_latency.png",
            "Latency webhook accepted -> stored, by acceptance second",
            [("p50", series["latency_p50_ms_by_s"]), ("p99", series["latency_p99_ms_by_s"])],
            "ms",
        ),
        (
            "e2e_lag.png",
            "Consumer lag (records)",
            [
                (stage, [(s["t"], s["lag"][stage]) for s in series["lag"]])
                for stage in ("detector", "downloader", "projection")
            ],
            "records",
        ),
    ]
    for name, title, lines, unit in charts:
        figure, axes = plt.subplots(figsize=(8, 4))
        for label, points in lines:
            if points:
                xs, ys = zip(*points, strict=True)
                axes.plot(xs, ys, label=label, marker=".")
        axes.set_title(title)
        axes.set_xlabel("seconds since the first webhook")
        axes.set_ylabel(unit)
        axes.grid(alpha=0.3)
        axes.legend()
        figure.tight_layout()
        path = directory / name
        figure.savefig(path, dpi=100)
        plt.close(figure)
        paths.append(path)
    return paths


__all__ = ["LagSampler", "plot", "run"]
