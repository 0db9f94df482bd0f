"""POST webhooks to the receiver at a target rate (or as fast as it takes them).

``await send_webhooks(hooks, base_url=..., secrets=...)`` returns a
:class:`SendSummary`: each webhook's HTTP status and latency, and, for the
accepted ones, the media ids the pipeline will derive for them (computed with
:func:`mediaflow.providers.parse_webhook`, so the demo and the chaos test know
exactly which media must end up stored or dead-lettered).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import Mapping, Sequence

import aiohttp

from mediaflow.errors import MediaflowError
from mediaflow.providers import parse_webhook
from simulator.webhooks import Webhook

ACCEPTED = 200


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """The fate of one webhook.

    ``status`` is the HTTP status, or 0 when no answer came (connection error
    or timeout; ``error`` says which). ``answered_at`` is the wall-clock time
    (epoch seconds) the answer came: for a 200, the moment the webhook was
    durably accepted, where end-to-end latency starts. ``media_ids`` are the
    downloadable media the pipeline derives from the body, ``invalid_media_ids``
    those it must dead-letter as never downloadable.
    """

    webhook: Webhook
    status: int
    latency_s: float
    media_ids: tuple[str, ...] = ()
    invalid_media_ids: tuple[str, ...] = ()
    error: str | None = None
    answered_at: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class SendSummary:
    """Every delivery of one run, and how long it took."""

    deliveries: tuple[Delivery, ...]
    duration_s: float

    @property
    def accepted(self) -> list[Delivery]:
        """Deliveries the receiver answered 200."""
        return [d for d in self.deliveries if d.status == ACCEPTED]

    @property
    def rejected(self) -> list[Delivery]:
        """Deliveries answered with anything else (or not at all)."""
        return [d for d in self.deliveries if d.status != ACCEPTED]

    def by_status(self) -> Counter[int]:
        """HTTP status -> count (0 = no answer)."""
        return Counter(d.status for d in self.deliveries)

    def by_kind(self) -> Counter[tuple[str, int]]:
        """(webhook kind, status) -> count."""
        return Counter((d.webhook.kind, d.status) for d in self.deliveries)

    def media_ids(self) -> set[str]:
        """Distinct downloadable media ids of the accepted webhooks (redeliveries collapse)."""
        return {m for d in self.accepted for m in d.media_ids}

    def invalid_media_ids(self) -> set[str]:
        """Distinct never-downloadable media ids of the accepted webhooks."""
        return {m for d in self.accepted for m in d.invalid_media_ids}

    def latency_percentile(self, q: float) -> float:
        """The ``q``-quantile (0..1) of answered requests' latency, in seconds (0 if none)."""
        values = sorted(d.latency_s for d in self.deliveries if d.status)
        if not values:
            return 0.0
        return values[min(len(values) - 1, round(q * (len(values) - 1)))]

    def table(self) -> str:
        """A plain-text summary for terminals."""
        rate = len(self.deliveries) / self.duration_s if self.duration_s else 0.0
        lines = [
            f"sent {len(self.deliveries)} webhooks in {self.duration_s:.2f} s ({rate:.1f}/s)",
            f"accepted {len(self.accepted)}, rejected {len(self.rejected)}",
            "status  count",
        ]
        lines += [f"{status:>6}  {n}" for status, n in sorted(self.by_status().items())]
        lines.append("kind            status  count")
        lines += [f"{k:<15} {s:>6}  {n}" for (k, s), n in sorted(self.by_kind().items())]
        lines.append(
            f"media to store: {len(self.media_ids())}, "
            f"never downloadable: {len(self.invalid_media_ids())}"
        )
        lines.append(
            "latency ms p50 {:.1f}  p95 {:.1f}  p99 {:.1f}".format(
                *(1000 * self.latency_percentile(q) for q in (0.5, 0.95, 0.99))
            )
        )
        return "\n".join(lines)


def expected_media(webhook: Webhook) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The (downloadable, never downloadable) media ids the pipeline derives from ``webhook``.

    Both are empty for bodies the receiver or detector cannot parse.
    """
    try:
        result = parse_webhook(
            webhook.provider, webhook.payload(), client_id="", instance_id=webhook.instance_id
        )
    except (ValueError, MediaflowError):
        return (), ()
    return (
        tuple(m.media_id for m in result.media),
        tuple(p.media_id for p in result.problems if p.media_id),
    )


async def send_webhooks(
    webhooks: Sequence[Webhook],
    *,
    base_url: str,
    secrets: Mapping[str, str],
    rate: float | None = None,
    concurrency: int = 16,
    timeout_s: float = 10.0,
) -> SendSummary:
    """POST every webhook to ``{base_url}/webhooks/{provider}?token=<secret>``.

    Args:
        webhooks: what to send, in order.
        base_url: the receiver, e.g. ``http://127.0.0.1:8080``.
        secrets: instance id -> webhook secret of its tenant.
        rate: webhooks per second to start; ``None`` sends as fast as the
            receiver answers (bounded by ``concurrency``).
        concurrency: most requests in flight at once.
        timeout_s: per-request timeout; a timeout is recorded as status 0.

    Raises:
        ValueError: ``rate`` or ``concurrency`` is not positive.

    """
    if concurrency <= 0 or (rate is not None and rate <= 0):
        raise ValueError("rate and concurrency must be positive")
    gate = asyncio.Semaphore(concurrency)
    base = base_url.rstrip("/")
    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def one(index: int, hook: Webhook) -> Delivery:
            if rate is not None:
                # Schedule by start time, not by completion: a slow answer must
                # not lower the offered rate.
                await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
            async with gate:
                return await _post(session, base, hook, secrets.get(hook.instance_id, ""))

        deliveries = await asyncio.gather(*(one(i, h) for i, h in enumerate(webhooks)))
    return SendSummary(tuple(deliveries), time.perf_counter() - started)


async def _post(session: aiohttp.ClientSession, base: str, hook: Webhook, secret: str) -> Delivery:
    began = time.perf_counter()
    try:
        async with session.post(
            f"{base}/webhooks/{hook.provider}",
            params={"token": secret},
            data=hook.body,
            headers={"Content-Type": "application/json"},
        ) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Delivery(
            hook, 0, time.perf_counter() - began, error=type(exc).__name__, answered_at=time.time()
        )
    latency = time.perf_counter() - began
    answered_at = time.time()
    media, invalid = expected_media(hook) if status == ACCEPTED else ((), ())
    return Delivery(hook, status, latency, media, invalid, answered_at=answered_at)


__all__ = ["ACCEPTED", "Delivery", "SendSummary", "expected_media", "send_webhooks"]
