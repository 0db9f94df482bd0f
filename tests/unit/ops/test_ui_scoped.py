"""A client's overview keeps the cluster's health and replaces every count with its own."""

from mediaflow.ops.ui.scoped import client_overview
from mediaflow.storage.projection.base import Stats

CLUSTER = {
    "broker": "ok (1 broker)",
    "s3": "ok",
    "under_replicated": [],
    "dead_letters": 9,
    "newest_dead_letter": "client other: 410",
    "projection": {"by_status": {"stored": 40}, "events_not_applied": 0},
    "groups": [{"group": "mediaflow-downloader", "lag": 3}],
    "in_flight_by_stage": {"downloader": 5},
}


def test_a_client_overview_has_the_cluster_health_and_only_its_own_counts():
    own = Stats(
        total=3,
        by_status={"stored": 2, "dead_lettered": 1},
        dead_letters=1,
        oldest_in_flight_at=1_000,
    )
    view = client_overview(CLUSTER, own, now_ms=61_000)
    assert view == {
        "broker": "ok (1 broker)",
        "s3": "ok",
        "under_replicated": [],
        "dead_letters": 1,
        "projection": {
            "media": 3,
            "by_status": {"stored": 2, "dead_lettered": 1},
            "oldest_in_flight_age_s": 60,
        },
    }
