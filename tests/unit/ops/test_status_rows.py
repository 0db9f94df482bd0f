import pytest

from mediaflow.errors import BrokerUnavailable
from mediaflow.kafka.topics import TopicLayout
from mediaflow.ops.status import Sample, lag_rows, stage_rows, take_sample


def test_lag_is_high_watermark_minus_committed_and_rate_comes_from_two_samples():
    before = Sample(10.0, {("g", "t", 0): 100}, {("t", 0): 150})
    after = Sample(12.0, {("g", "t", 0): 120}, {("t", 0): 160})
    (row,) = lag_rows(after, before)
    assert (row["lag"], row["rate"]) == (40, 10.0)


def test_a_single_sample_has_lag_but_no_throughput():
    (row,) = lag_rows(Sample(1.0, {("g", "t", 0): 5}, {("t", 0): 5}))
    assert (row["lag"], row["rate"]) == (0, None)


class _Late:
    """A future that never completes in time (a broker that died a moment ago)."""

    def result(self, timeout: float) -> None:
        raise TimeoutError


class _AdminWithADeadBroker:
    def list_consumer_groups(self, request_timeout: float) -> _Late:
        return _Late()


def test_a_broker_that_never_answers_is_a_clear_error_not_a_traceback():
    layout = TopicLayout(())
    with pytest.raises(BrokerUnavailable, match="a broker may be down"):
        take_sample(_AdminWithADeadBroker(), None, layout)  # type: ignore[arg-type]


def test_a_stage_sums_its_partitions_lag_and_its_oldest_age_is_the_oldest_first_pending():
    sample = Sample(
        1.0,
        {("g", "t", 0): 5, ("g", "t", 1): 7, ("g", "r", 0): 3, ("h", "t", 0): 9},
        {("t", 0): 9, ("t", 1): 7, ("r", 0): 4},
        {("g", "t", 0): 50_000, ("g", "r", 0): 40_000},
    )
    stages = {
        s["group"]: s for s in stage_rows(lag_rows(sample), sample.first_pending, now_ms=100_000)
    }
    assert (stages["g"]["in_flight"], stages["g"]["oldest_in_flight_age_s"]) == (5, 60)
    assert (stages["h"]["in_flight"], stages["h"]["oldest_in_flight_age_s"]) == (0, None)


def test_a_stage_rate_sums_what_its_partitions_committed_per_second_since_the_last_look():
    before = Sample(10.0, {("g", "t", 0): 100, ("g", "t", 1): 50}, {("t", 0): 200, ("t", 1): 90})
    after = Sample(12.0, {("g", "t", 0): 120, ("g", "t", 1): 60}, {("t", 0): 200, ("t", 1): 90})
    (stage,) = stage_rows(lag_rows(after, before), after.first_pending, now_ms=0)
    (first_look,) = stage_rows(lag_rows(after), after.first_pending, now_ms=0)
    assert (stage["rate"], stage["in_flight"]) == (15.0, 110)
    assert first_look["rate"] is None
