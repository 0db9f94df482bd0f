from types import SimpleNamespace as NS

from mediaflow.ops.status import Sample, lag_rows, lagging_replicas


def test_lag_is_high_watermark_minus_committed_and_rate_comes_from_two_samples():
    before = Sample(10.0, {("g", "t", 0): 100}, {("t", 0): 150})
    after = Sample(12.0, {("g", "t", 0): 120}, {("t", 0): 160})
    (row,) = lag_rows(after, before)
    assert (row["lag"], row["rate"]) == (40, 10.0)


def test_a_single_sample_has_lag_but_no_throughput():
    (row,) = lag_rows(Sample(1.0, {("g", "t", 0): 5}, {("t", 0): 5}))
    assert (row["lag"], row["rate"]) == (0, None)


def test_a_partition_with_fewer_in_sync_replicas_than_replicas_is_reported():

    topics = {
        "media.events": NS(
            partitions={
                0: NS(replicas=[1, 2, 3], isrs=[1, 2, 3]),
                1: NS(replicas=[1, 2, 3], isrs=[2]),
            }
        ),
        "whatsapp.webhooks": NS(partitions={0: NS(replicas=[1], isrs=[1])}),
    }
    assert lagging_replicas(topics) == ["media.events[1] isr 1/3"]
