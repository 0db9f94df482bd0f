"""What a client's session sees of the overview: the cluster's health and its own counts.

Lag, rates, consumer groups, the dead-letter topic's count and the events the
projection has not applied add up every client's traffic, so a client's
session does not get them. Broker, S3 and replication health are the same for
everyone and are shown. Its own numbers come from the projection: media by
status, the oldest in-flight media, media dead-lettered (and the activity
chart, which the overview already draws per client).

The shared keys are an allowlist: a number added to the overview later stays
admin-only until it is named here.
"""

from __future__ import annotations

from typing import Any

from mediaflow.storage.projection.base import Stats

SHARED = ("at", "error", "broker", "s3", "replication", "under_replicated")
"""Keys of the cluster-wide overview a client's session may see."""


def client_overview(cluster: dict[str, Any], own: Stats, now_ms: int) -> dict[str, Any]:
    """The overview of one client: ``cluster``'s health, ``own`` counts (pure).

    Args:
        cluster: the whole overview (``status --json``).
        own: the projection's counts of the client's media.
        now_ms: wall-clock milliseconds, for the oldest in-flight media's age.
    """
    oldest = own.oldest_in_flight_at
    return {
        **{key: cluster[key] for key in SHARED if key in cluster},
        "dead_letters": own.dead_letters,
        "projection": {
            "media": own.total,
            "by_status": own.by_status,
            "oldest_in_flight_age_s": None if oldest is None else round((now_ms - oldest) / 1000),
        },
    }


__all__ = ["SHARED", "client_overview"]
