"""Replication health names the broker that is down and the partitions it left short (pure)."""

from __future__ import annotations

from mediaflow.kafka.replication import PartitionReplicas, assess


def part(topic: str, n: int, isr: tuple[int, ...], leader: int = 1) -> PartitionReplicas:
    return PartitionReplicas(topic, n, leader, (1, 2, 3), isr)


def test_three_brokers_every_partition_in_sync_is_ok() -> None:
    state = assess([1, 2, 3], [part("t", 0, (1, 2, 3)), part("t", 1, (2, 3, 1))], {"t": 2})
    assert state.ok
    assert state.summary() == "ok (3 broker(s), every partition in sync)"


def test_a_broker_down_is_named_with_the_partitions_it_left_under_replicated() -> None:
    partitions = [part("t", 0, (1, 3)), part("t", 1, (1, 2, 3)), part("u", 0, (3, 1))]
    state = assess([1, 3], partitions, {"t": 2, "u": 2})
    assert not state.ok
    assert state.down == (2,)
    assert [str(p) for p in state.under_replicated] == [
        "t[0] in sync [1, 3] of [1, 2, 3]",
        "u[0] in sync [3, 1] of [1, 2, 3]",
    ]
    assert state.below_min_isr == ()
    assert state.summary().startswith("broker(s) 2 down; 2 partition(s) under-replicated: t[0]")


def test_fewer_in_sync_than_min_insync_replicas_says_writes_are_refused() -> None:
    state = assess([1], [part("t", 0, (1,)), part("t", 1, (), leader=-1)], {"t": 2})
    assert state.down == (2, 3)
    assert len(state.below_min_isr) == 2
    assert [str(p) for p in state.offline] == ["t[1] in sync [] of [1, 2, 3], no leader"]
    assert "below min.insync.replicas (writes refused)" in state.summary()


def test_a_long_list_is_cut_and_counted() -> None:
    state = assess([1, 3], [part("t", n, (1, 3)) for n in range(8)], {"t": 2})
    assert state.summary().endswith("t[4] in sync [1, 3] of [1, 2, 3] and 3 more")
