"""The overview's activity chart: the last 24 hours in 5-minute bars, as plain numbers (pure).

The page draws it as SVG rectangles (attributes, no inline style or script,
so the CSP holds), first on the server and then from ``overview.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mediaflow.storage.projection import Activity

BUCKET_MS = 5 * 60 * 1000
BUCKETS = 24 * 12
HEIGHT = 100
"""Drawing units: the tallest bar; the SVG scales to the page width."""
HOUR_BUCKETS = 12


def window_start(now_ms: int) -> int:
    """The first bucket's start: 24 h back, aligned to 5 minutes."""
    return (now_ms // BUCKET_MS - BUCKETS + 1) * BUCKET_MS


def bars(activity: Sequence[Activity], start_ms: int) -> dict[str, Any]:
    """Bar heights per bucket (stored, then failed and dead-lettered stacked) and totals."""
    by_index = {(a.bucket_start - start_ms) // BUCKET_MS: a for a in activity}
    tallest = max((a.stored + a.failed + a.dead_lettered for a in activity), default=0) or 1
    drawn = []
    for index in range(BUCKETS):
        a = by_index.get(index)
        if a is None:
            continue
        scale = HEIGHT / tallest
        drawn.append(
            {
                "x": index,
                "stored": round(a.stored * scale, 2),
                "failed": round(a.failed * scale, 2),
                "dead_lettered": round(a.dead_lettered * scale, 2),
            }
        )
    last_hour = [by_index[i] for i in range(BUCKETS - HOUR_BUCKETS, BUCKETS) if i in by_index]
    return {
        "start_ms": start_ms,
        "bucket_ms": BUCKET_MS,
        "buckets": BUCKETS,
        "height": HEIGHT,
        "tallest": tallest,
        "bars": drawn,
        "last_hour": {
            "stored": sum(a.stored for a in last_hour),
            "failed": sum(a.failed for a in last_hour),
            "dead_lettered": sum(a.dead_lettered for a in last_hour),
        },
    }


__all__ = ["BUCKETS", "BUCKET_MS", "HEIGHT", "bars", "window_start"]
