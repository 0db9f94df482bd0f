"""What each system left in the bucket, held against the ledger, and the side-by-side table. Pure.

The judge is the chaos oracle's :func:`tests.chaos.oracle.audit`, fed the
bucket alone: the Celery baseline has no event log, so both systems are
judged on the same evidence (each object key names the media it holds and
the oracle checks the key, the bytes and that each media is stored once).
Only media meant to be stored count here; mediaflow's dead letters are
reported beside (what an operator can list and retry).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from tests.chaos import oracle


@dataclasses.dataclass(frozen=True, slots=True)
class Fates:
    """What became of the media of the accepted webhooks that were meant to be stored.

    Attributes:
        meant: media of webhooks answered 200, meant to be stored.
        stored: of those, stored once with the right bytes under the right key.
        lost: of those, in no object.
        duplicated: media stored under more than one key.
        wrong: objects under a wrong key, or bytes of no media.
        latencies_s: per stored media, webhook answered 200 -> object's LastModified.
    """

    meant: int
    stored: int
    lost: int
    duplicated: int
    wrong: int
    latencies_s: tuple[float, ...]


def fates(
    ledger: Sequence[oracle.LedgerMedia],
    objects: Mapping[str, str],
    open_uploads: Sequence[str],
    stored_at: Mapping[str, float],
    accepted_at: Mapping[str, float],
) -> Fates:
    """Judge one system's bucket.

    Args:
        ledger: the simulator's ledger (with ``accepted`` filled in).
        objects: object key -> SHA-256 of its bytes as read back.
        open_uploads: multipart uploads left open.
        stored_at: object key -> its LastModified (epoch seconds).
        accepted_at: message id -> when its first delivery was answered 200 (epoch seconds).
    """
    meant = [e for e in ledger if e.fate == oracle.STORE]
    # Each object names itself: the oracle's "event log names the key with its hash" holds.
    named = tuple(oracle.StoredEvent(key, key, sha) for key, sha in objects.items())
    verdict = oracle.audit(meant, oracle.Outputs(objects, tuple(open_uploads), stored=named))
    by_sha: dict[str, list[str]] = {}
    for key, sha in objects.items():
        by_sha.setdefault(sha, []).append(key)
    latencies = []
    for entry in meant:
        keys = by_sha.get(entry.sha256, [])
        if entry.accepted and len(keys) == 1 and entry.message_id in accepted_at:
            latencies.append(stored_at[keys[0]] - accepted_at[entry.message_id])
    wrong = sum(
        verdict.count(c) for c in ("wrong_key", "corrupted", "unexpected_object", "open_upload")
    )
    return Fates(
        meant=sum(1 for e in meant if e.accepted),
        stored=verdict.stored,
        lost=verdict.count("lost"),
        duplicated=verdict.count("duplicated"),
        wrong=wrong,
        latencies_s=tuple(sorted(latencies)),
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) of sorted ``values`` (nearest rank), ``None`` when empty."""
    if not values:
        return None
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def summary(
    fate: Fates, *, accepted: int, sent: int, cpu_s: Mapping[str, float], broker: str
) -> dict[str, Any]:
    """One system's column: counts, latency percentiles, CPU per 1,000 media stored.

    ``cpu_s`` is per process group; ``broker`` names the queue's broker among them.
    """

    def per_thousand(seconds: float) -> float | None:
        return 1000 * seconds / fate.stored if fate.stored else None

    total_cpu = sum(cpu_s.values())
    return {
        "webhooks_sent": sent,
        "webhooks_accepted": accepted,
        "media_meant": fate.meant,
        "media_stored": fate.stored,
        "lost": fate.lost,
        "duplicated": fate.duplicated,
        "wrong": fate.wrong,
        "p50_s": percentile(fate.latencies_s, 0.50),
        "p99_s": percentile(fate.latencies_s, 0.99),
        "cpu_s": {k: round(v, 1) for k, v in cpu_s.items()},
        "cpu_s_per_1000_media": per_thousand(total_cpu),
        "cpu_s_per_1000_media_without_broker": per_thousand(total_cpu - cpu_s.get(broker, 0.0)),
    }


ROWS = (
    ("webhooks sent", "webhooks_sent", "{:d}"),
    ("webhooks accepted (200)", "webhooks_accepted", "{:d}"),
    ("media meant to be stored (of accepted webhooks)", "media_meant", "{:d}"),
    ("stored once, right bytes, right key", "media_stored", "{:d}"),
    ("lost", "lost", "{:d}"),
    ("duplicated (one media under several keys)", "duplicated", "{:d}"),
    ("wrong key, wrong bytes or upload left open", "wrong", "{:d}"),
    ("accepted -> stored p50 (s)", "p50_s", "{:.2f}"),
    ("accepted -> stored p99 (s)", "p99_s", "{:.2f}"),
    (
        "CPU s per 1,000 media stored (every process, the broker included)",
        "cpu_s_per_1000_media",
        "{:.1f}",
    ),
    (
        "CPU s per 1,000 media stored, the broker excluded",
        "cpu_s_per_1000_media_without_broker",
        "{:.1f}",
    ),
    ("failures an operator is shown", "visible_failures", "{}"),
    ("what an operator can list and retry", "operator", "{}"),
)


def markdown(columns: Mapping[str, Mapping[str, Any]]) -> str:
    """The side-by-side table: one row per measure, one column per system."""
    names = list(columns)
    lines = ["| measure | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for label, key, shape in ROWS:
        cells = []
        for name in names:
            value = columns[name].get(key)
            cells.append("-" if value is None else shape.format(value))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["ROWS", "Fates", "fates", "markdown", "percentile", "summary"]
