"""What a demo or end-to-end run ended with, computed from plain data (pure: no I/O).

The demo collects three things: the sender's :class:`~simulator.sender.Delivery`
list (when each webhook was accepted and which media it carries), the
projection's row of every expected media, and whether each stored object's
bytes hash to the expected sha256. :func:`summarize` turns them into an
:class:`Outcome`; :func:`render` prints it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from simulator.sender import ACCEPTED, Delivery

TERMINAL = frozenset({"stored", "dead_lettered"})
"""Statuses the pipeline does not leave on its own: the demo waits for one of them."""


class Row(Protocol):
    """The projection row fields a summary reads (``MediaRow`` has them all)."""

    media_id: str
    status: str
    media_type: str | None
    stored_at: int | None
    last_error_kind: str | None
    object_key: str | None
    sha256: str | None


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) by nearest rank on sorted values; 0.0 for no values.

    Raises:
        ValueError: ``q`` is outside 0..1.

    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside 0..1")
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def accepted_at(deliveries: Iterable[Delivery]) -> dict[str, float]:
    """Media id -> when the first accepted webhook naming it was answered (epoch seconds).

    Redeliveries of a message name the same media again; latency counts from
    the first acceptance, the moment the provider could forget about it.
    """
    first: dict[str, float] = {}
    for delivery in deliveries:
        if delivery.status != ACCEPTED:
            continue
        for media_id in (*delivery.media_ids, *delivery.invalid_media_ids):
            if media_id not in first or delivery.answered_at < first[media_id]:
                first[media_id] = delivery.answered_at
    return first


def latencies_s(rows: Iterable[Row], accepted: Mapping[str, float]) -> dict[str, float]:
    """Media id -> seconds from webhook accepted to ``stored_at``, for stored media only."""
    out: dict[str, float] = {}
    for row in rows:
        if row.status == "stored" and row.stored_at is not None and row.media_id in accepted:
            out[row.media_id] = max(0.0, row.stored_at / 1000 - accepted[row.media_id])
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """The end state of a run.

    Attributes:
        expected: media ids the accepted webhooks carry.
        stored_by_type: media type -> stored count.
        dead_by_reason: error kind -> dead-lettered count.
        missing: expected media absent from the projection or not terminal (id -> status).
        corrupted: stored media whose object does not hash to the expected sha256.
        latencies: media id -> seconds from acceptance to stored.
        examples: a few stored object keys.

    """

    expected: frozenset[str]
    stored_by_type: Counter[str]
    dead_by_reason: Counter[str]
    missing: dict[str, str]
    corrupted: tuple[str, ...]
    latencies: dict[str, float]
    examples: tuple[str, ...]

    @property
    def lost(self) -> bool:
        """True when some accepted media is not terminal or a stored object is wrong."""
        return bool(self.missing or self.corrupted)

    def latency_ms(self, q: float) -> float:
        """The ``q``-quantile of end-to-end latency, in milliseconds."""
        return 1000 * percentile(list(self.latencies.values()), q)


def summarize(
    expected: Iterable[str],
    rows: Mapping[str, Row | None],
    accepted: Mapping[str, float],
    verified: Mapping[str, bool],
    *,
    examples: int = 3,
) -> Outcome:
    """Compare what should have happened with the projection and the bucket.

    Args:
        expected: every media id the accepted webhooks carry.
        rows: media id -> its projection row (``None`` when absent).
        accepted: media id -> acceptance time (see :func:`accepted_at`).
        verified: media id -> whether its stored object hashed right; a stored
            media missing here counts as not verified.
        examples: how many object keys to keep as examples.

    """
    wanted = frozenset(expected)
    present = [row for media_id in sorted(wanted) if (row := rows.get(media_id)) is not None]
    stored = [row for row in present if row.status == "stored"]
    missing = {m: "absent" for m in sorted(wanted) if rows.get(m) is None}
    missing.update({row.media_id: row.status for row in present if row.status not in TERMINAL})
    return Outcome(
        expected=wanted,
        stored_by_type=Counter(row.media_type or "unknown" for row in stored),
        dead_by_reason=Counter(
            row.last_error_kind or "unknown" for row in present if row.status == "dead_lettered"
        ),
        missing=missing,
        corrupted=tuple(row.media_id for row in stored if not verified.get(row.media_id, False)),
        latencies=latencies_s(present, accepted),
        examples=tuple(row.object_key for row in stored[:examples] if row.object_key),
    )


def render(outcome: Outcome) -> str:
    """A plain-text table of an outcome, for terminals."""
    lines = [f"media expected: {len(outcome.expected)}", "", f"{'stored by type':<24} count"]
    lines += [f"  {t:<22} {n:>5}" for t, n in sorted(outcome.stored_by_type.items())]
    lines.append(f"  {'total':<22} {sum(outcome.stored_by_type.values()):>5}")
    lines += ["", "dead letters by reason"]
    lines += [f"  {k:<22} {n:>5}" for k, n in sorted(outcome.dead_by_reason.items())]
    lines.append(f"  {'total':<22} {sum(outcome.dead_by_reason.values()):>5}")
    lines += [
        "",
        "end-to-end latency, webhook accepted -> stored "
        f"({len(outcome.latencies)} media): p50 {outcome.latency_ms(0.5):.0f} ms  "
        f"p95 {outcome.latency_ms(0.95):.0f} ms  p99 {outcome.latency_ms(0.99):.0f} ms",
    ]
    if outcome.missing:
        lines.append(f"NOT TERMINAL ({len(outcome.missing)}):")
        lines += [f"  {m}  {status}" for m, status in sorted(outcome.missing.items())]
    if outcome.corrupted:
        lines.append(f"STORED WITH WRONG BYTES ({len(outcome.corrupted)}):")
        lines += [f"  {m}" for m in outcome.corrupted]
    return "\n".join(lines)


__all__ = [
    "TERMINAL",
    "Outcome",
    "Row",
    "accepted_at",
    "latencies_s",
    "percentile",
    "render",
    "summarize",
]
