import pytest

from mediaflow.errors import BrokerUnavailable
from mediaflow.kafka.topics import TopicLayout
from mediaflow.ops.status import Sample, lag_rows, take_sample


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
