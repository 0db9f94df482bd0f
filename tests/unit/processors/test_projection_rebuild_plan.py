"""How a rebuild shares the log's partitions among its processes."""

from __future__ import annotations

from mediaflow.processors.projection.rebuild import split


def test_every_partition_is_replayed_exactly_once() -> None:
    sizes = {p: 100 * (p + 1) for p in range(6)}
    shares = split(sizes, 4)
    replayed = sorted(p for share in shares for p in share)
    assert replayed == list(range(6))


def test_shares_are_balanced_by_records_not_by_partition_count() -> None:
    # One hot partition: it gets a process of its own, the rest share the other.
    shares = split({0: 1000, 1: 100, 2: 100, 3: 100}, 2)
    assert sorted(shares) == [[0], [1, 2, 3]]


def test_never_more_processes_than_partitions() -> None:
    assert len(split({0: 5, 1: 5}, 8)) == 2


def test_an_empty_log_still_gets_one_replay_so_its_offsets_are_stored() -> None:
    assert split({0: 0, 1: 0, 2: 0}, 1) == [[0, 1, 2]]
    assert split({}, 4) == [[]]
