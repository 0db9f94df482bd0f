"""Replication health of mediaflow's topics: brokers down, partitions under-replicated.

Kafka's metadata lists only live brokers, but every partition names all its
replicas: a replica id no live broker has is a broker that is down. A
partition whose in-sync replicas are fewer than its replicas is
under-replicated (a copy is missing or catching up); fewer than the topic's
``min.insync.replicas`` and writes to it are refused; no leader and it can
neither be read nor written. :func:`assess` is pure, :func:`read_replication`
asks the cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from mediaflow.errors import BrokerUnavailable
from mediaflow.kafka.topics import TopicSpec

SHOWN = 5
"""Partitions named in a one-line summary; the rest are counted."""


@dataclass(frozen=True, slots=True)
class PartitionReplicas:
    """One partition's replicas as the cluster reports them."""

    topic: str
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]

    def __str__(self) -> str:
        return (
            f"{self.topic}[{self.partition}] in sync {list(self.isr)} of {list(self.replicas)}"
            + ("" if self.leader >= 0 else ", no leader")
        )


@dataclass(frozen=True, slots=True)
class Replication:
    """The replication state of the declared topics.

    Attributes:
        live: ids of the brokers that answer.
        down: ids of brokers some partition names as a replica but that do not answer.
        under_replicated: partitions with fewer in-sync replicas than replicas.
        below_min_isr: of those, partitions whose writes are refused (fewer in
            sync than the topic's ``min.insync.replicas``).
        offline: partitions without a leader.
    """

    live: tuple[int, ...]
    down: tuple[int, ...] = ()
    under_replicated: tuple[PartitionReplicas, ...] = ()
    below_min_isr: tuple[PartitionReplicas, ...] = ()
    offline: tuple[PartitionReplicas, ...] = ()

    @property
    def ok(self) -> bool:
        """Every broker up, every partition fully in sync."""
        return not (self.down or self.under_replicated or self.offline)

    def summary(self) -> str:
        """One line for a status screen or a checklist."""
        if self.ok:
            return f"ok ({len(self.live)} broker(s), every partition in sync)"
        parts = []
        if self.down:
            parts.append(f"broker(s) {', '.join(map(str, self.down))} down")
        for label, items in (
            ("under-replicated", self.under_replicated),
            ("below min.insync.replicas (writes refused)", self.below_min_isr),
            ("without a leader", self.offline),
        ):
            if items:
                shown = "; ".join(str(p) for p in items[:SHOWN])
                more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
                parts.append(f"{len(items)} partition(s) {label}: {shown}{more}")
        return "; ".join(parts)


def assess(
    live: Iterable[int], partitions: Iterable[PartitionReplicas], min_isr: Mapping[str, int]
) -> Replication:
    """Classify ``partitions`` (pure).

    Args:
        live: ids of the brokers in the metadata.
        partitions: every partition of the declared topics.
        min_isr: topic -> its ``min.insync.replicas``.
    """
    live_ids = tuple(sorted(set(live)))
    ordered = sorted(partitions, key=lambda p: (p.topic, p.partition))
    named = {r for p in ordered for r in p.replicas}
    return Replication(
        live=live_ids,
        down=tuple(sorted(named - set(live_ids))),
        under_replicated=tuple(p for p in ordered if len(p.isr) < len(p.replicas)),
        below_min_isr=tuple(p for p in ordered if len(p.isr) < min_isr.get(p.topic, 1)),
        offline=tuple(p for p in ordered if p.leader < 0),
    )


def read_replication(
    admin: AdminClient, specs: Iterable[TopicSpec], timeout: float = 10.0
) -> Replication:
    """Ask the cluster about the declared topics (those missing are ``topics check``'s business).

    Raises:
        BrokerUnavailable: the cluster did not answer in time.
    """
    try:
        metadata: Any = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise BrokerUnavailable(f"no metadata from the cluster: {exc.args[0].str()}") from exc
    wanted = {s.name: s.min_insync_replicas for s in specs}
    partitions = [
        PartitionReplicas(name, p.id, p.leader, tuple(p.replicas), tuple(p.isrs))
        for name, topic in metadata.topics.items()
        if name in wanted
        for p in topic.partitions.values()
    ]
    return assess(metadata.brokers, partitions, wanted)


__all__ = ["PartitionReplicas", "Replication", "assess", "read_replication"]
