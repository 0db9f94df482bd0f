"""The overview chart: 5-minute bars over 24 hours, scaled to the busiest, and the last hour."""

from mediaflow.ops.ui.chart import BUCKET_MS, BUCKETS, HEIGHT, bars, window_start
from mediaflow.storage.projection import Activity

NOW = 1_764_331_234_567


def test_the_window_is_24_hours_of_whole_buckets_ending_with_the_current_one():
    start = window_start(NOW)
    assert start % BUCKET_MS == 0
    assert start + BUCKETS * BUCKET_MS > NOW >= start + (BUCKETS - 1) * BUCKET_MS


def test_bars_scale_to_the_busiest_bucket_and_the_last_hour_sums_its_buckets():
    start = window_start(NOW)
    last = start + (BUCKETS - 1) * BUCKET_MS
    chart = bars(
        [Activity(start, 10, 0, 0), Activity(last, 3, 1, 1)],
        start,
    )
    assert [b["x"] for b in chart["bars"]] == [0, BUCKETS - 1]
    assert chart["bars"][0]["stored"] == HEIGHT
    assert chart["bars"][1]["stored"] == HEIGHT * 3 / 10
    assert chart["last_hour"] == {"stored": 3, "failed": 1, "dead_lettered": 1}


def test_an_idle_day_draws_no_bar_and_counts_nothing():
    chart = bars([], window_start(NOW))
    assert chart["bars"] == [] and chart["last_hour"]["stored"] == 0
