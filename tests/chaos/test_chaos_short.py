"""The chaos run's short variant on a three-node cluster, then every webhook accounted for.

The cluster of ``deploy/cluster.sh`` (under the stack dir ``MEDIAFLOW_STACK_DIR``
names) boots while the rest of the suite runs (see ``conftest.py``). The run
SIGKILLs the node leading a webhook partition and starts it again, and stops
S3Proxy (of that stack) for a few seconds, starting it again whatever happens.
The stack's single broker is left alone (the rest of the suite uses it).
"""

from __future__ import annotations

import pytest

from tests.chaos.cluster import Cluster
from tests.chaos.run import report, run_chaos, short_plan

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def result(chaos_cluster: Cluster):  # type: ignore[no-untyped-def]
    """One short chaos run shared by the assertions below; its topics and bucket go after."""
    outcome = run_chaos(short_plan())
    print(report(outcome))
    yield outcome
    outcome.run.discard()


def test_every_accepted_media_ends_stored_or_dead_lettered(result) -> None:  # type: ignore[no-untyped-def]
    assert result.tally.expected, "the run accepted no media"
    assert result.tally.lost == {}


def test_every_media_meant_to_be_stored_is_stored_none_dead_lettered(result) -> None:  # type: ignore[no-untyped-def]
    # Only transient faults and misconfigurations that pass: a dead letter of
    # any kind for such a media (retries_exhausted, internal...) is a defect.
    assert result.tally.unintended == {}
    assert result.tally.stored == len(result.tally.expected - result.tally.meant_dead)


def test_each_fanout_webhook_is_one_too_many_media_dead_letter(result) -> None:  # type: ignore[no-untyped-def]
    assert result.tally.fanouts == result.plan.fanouts
    assert result.tally.fanouts_dead_lettered == result.tally.fanouts
    assert result.tally.dlq_by_kind["too_many_media"] == result.tally.fanouts


def test_every_planned_fault_fired_and_no_secret_left_for_another_origin(result) -> None:  # type: ignore[no-untyped-def]
    # Hostile Retry-After, surrogate error texts, cross-origin redirects, fan-outs
    # and the wrong S3 secret all happened: the other assertions are about them.
    assert result.unplayed == []
    assert result.played.trap_leaks == 0


def test_no_media_is_stored_twice_and_every_object_has_the_right_bytes(result) -> None:  # type: ignore[no-untyped-def]
    assert result.tally.duplicated == {}
    assert result.tally.corrupted == {}
    assert result.tally.open_uploads == ()


def test_repeated_terminal_events_are_collapsed_by_the_projection(result) -> None:  # type: ignore[no-untyped-def]
    # Redelivered webhooks and requests replayed after a kill are answered again
    # from the idempotent store: a second MediaStored naming the same object.
    assert result.tally.repeated_terminal > 0, "the run never exercised a repeat"
    assert result.tally.collapsed == result.tally.repeated_terminal


def test_no_role_dies_on_its_own_under_kills_a_wrong_secret_and_an_s3_outage(result) -> None:  # type: ignore[no-untyped-def]
    assert result.unexpected_exits == ()
    assert set(result.exit_codes.values()) == {0}


def test_the_independent_oracle_finds_every_media_as_the_ledger_meant(result) -> None:  # type: ignore[no-untyped-def]
    # The simulator's ledger against the bucket (boto3), the event log and the
    # dead-letter topic (fastavro on the .avsc files): no pipeline code involved.
    verdict = result.verdict
    assert verdict.ok, "\n".join(f"{c}: {p}" for c, ps in verdict.problems.items() for p in ps)
    assert verdict.stored == verdict.accepted_by_fate["store"] > 0
    assert verdict.dead_as_meant["too_many_media"] == verdict.accepted_by_fate["too_many_media"]


def test_a_broker_killed_under_load_is_shown_down_and_the_pipeline_resumes(result) -> None:  # type: ignore[no-untyped-def]
    # While the node is down, `mediaflow status` names it and the partitions it
    # left under-replicated; after it, webhooks are accepted and media stored.
    [resumed] = result.cluster_faults
    assert resumed.fault.name.startswith("SIGKILL node ")
    node = resumed.fault.name.split()[2].rstrip(",")
    assert resumed.fault.seen.startswith(f"replication: broker(s) {node} down; ")
    assert "under-replicated" in resumed.fault.seen
    assert resumed.accepted_after_s is not None and resumed.stored_after_s is not None
