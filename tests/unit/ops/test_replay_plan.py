import io

import pytest

from mediaflow.cli._replay import confirm
from mediaflow.errors import UsageError
from mediaflow.ops.replay import ReplayTarget, plan_partition


def test_the_plan_moves_from_the_committed_offset_and_counts_records_to_reprocess():
    plan = plan_partition("t", 0, current=90, low=10, high=100, wanted=40)
    assert (plan.current, plan.new, plan.to_reprocess, plan.changes) == (90, 40, 60, True)


def test_an_offset_below_the_retained_log_is_clamped_to_the_low_watermark():
    assert plan_partition("t", 0, current=None, low=10, high=100, wanted=0).new == 10


def test_an_offset_past_the_end_is_clamped_to_the_high_watermark():
    assert plan_partition("t", 0, current=5, low=0, high=100, wanted=500).new == 100


def test_a_timestamp_after_every_record_moves_to_the_end():
    plan = plan_partition("t", 0, current=100, low=0, high=100, wanted=None)
    assert (plan.new, plan.to_reprocess, plan.changes) == (100, 0, False)


def test_exactly_one_replay_target_must_be_chosen():
    with pytest.raises(UsageError):
        ReplayTarget(from_offset=1, to_earliest=True)
    with pytest.raises(UsageError):
        ReplayTarget()


def test_without_a_terminal_and_without_yes_the_command_refuses_to_guess():
    with pytest.raises(UsageError, match="--yes"):
        confirm("move?", assume_yes=False, stdin=io.StringIO("y\n"))


def test_yes_confirms_without_asking():
    assert confirm("move?", assume_yes=True, stdin=io.StringIO(""))
