"""The demo's summary: percentiles, latency from acceptance to stored, and what counts as lost."""

from __future__ import annotations

import pytest

from mediaflow.media_state import MediaRow
from simulator.report import accepted_at, latencies_s, percentile, render, summarize
from simulator.sender import Delivery
from simulator.webhooks import Webhook

HOOK = Webhook("wapi", "instance", "media", b"{}")


def row(media_id: str, status: str, **fields: object) -> MediaRow:
    return MediaRow(
        media_id=media_id,
        status=status,
        status_at=0,
        status_event_id="e",
        created_at=0,
        updated_at=0,
        day="2024-11-28",
        **fields,  # type: ignore[arg-type]
    )


def delivery(status: int, at: float, *media: str) -> Delivery:
    return Delivery(HOOK, status, 0.01, media_ids=media, answered_at=at)


def test_percentile_picks_the_nearest_rank() -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0


def test_percentile_of_nothing_is_zero() -> None:
    assert percentile([], 0.99) == 0.0


def test_percentile_rejects_a_quantile_outside_zero_to_one() -> None:
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


def test_acceptance_time_is_the_first_accepted_delivery_of_a_media() -> None:
    deliveries = [delivery(200, 20.0, "m"), delivery(200, 10.0, "m"), delivery(503, 5.0, "m")]
    assert accepted_at(deliveries) == {"m": 10.0}


def test_latency_runs_from_acceptance_to_stored_at_for_stored_media_only() -> None:
    rows = [row("a", "stored", stored_at=12_500), row("b", "dead_lettered")]
    assert latencies_s(rows, {"a": 10.0, "b": 10.0}) == {"a": 2.5}


def test_a_media_absent_from_the_projection_is_lost() -> None:
    outcome = summarize({"a", "b"}, {"a": row("a", "dead_lettered"), "b": None}, {}, {})
    assert outcome.lost and outcome.missing == {"b": "absent"}


def test_a_media_still_retrying_is_lost() -> None:
    outcome = summarize({"a"}, {"a": row("a", "retrying")}, {}, {})
    assert outcome.missing == {"a": "retrying"}


def test_a_stored_object_with_the_wrong_bytes_is_lost() -> None:
    outcome = summarize({"a"}, {"a": row("a", "stored", media_type="image")}, {}, {"a": False})
    assert outcome.corrupted == ("a",)


def test_every_media_terminal_and_verified_is_nothing_lost() -> None:
    rows = {
        "a": row("a", "stored", media_type="image", object_key="k/a.jpg"),
        "b": row("b", "dead_lettered", last_error_kind="expired"),
    }
    outcome = summarize({"a", "b"}, rows, {}, {"a": True})
    assert not outcome.lost


def test_summary_counts_stored_by_type_and_dead_letters_by_reason() -> None:
    rows = {
        "a": row("a", "stored", media_type="image"),
        "b": row("b", "stored", media_type="image"),
        "c": row("c", "dead_lettered", last_error_kind="expired"),
    }
    outcome = summarize(rows, rows, {}, {"a": True, "b": True})
    assert (outcome.stored_by_type, outcome.dead_by_reason) == ({"image": 2}, {"expired": 1})


def test_rendered_summary_names_what_is_not_terminal() -> None:
    outcome = summarize({"a"}, {"a": row("a", "retrying")}, {}, {})
    assert "a  retrying" in render(outcome)
