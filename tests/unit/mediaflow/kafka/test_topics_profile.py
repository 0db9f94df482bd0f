"""One topics file serves one broker and a replicated cluster: a profile overlays every topic."""

from __future__ import annotations

import dataclasses

import pytest

from mediaflow.config import KafkaSettings
from mediaflow.errors import ConfigError
from mediaflow.kafka.topics import load_layout


def test_without_a_profile_the_topics_keep_the_single_node_defaults() -> None:
    specs = load_layout(KafkaSettings()).specs
    assert {(s.replication_factor, s.min_insync_replicas) for s in specs} == {(1, 1)}


def test_the_cluster_profile_puts_every_topic_on_three_brokers_two_in_sync() -> None:
    plain = load_layout(KafkaSettings()).specs
    cluster = load_layout(dataclasses.replace(KafkaSettings(), topics_profile="cluster")).specs
    assert {(s.replication_factor, s.min_insync_replicas) for s in cluster} == {(3, 2)}
    assert [(s.name, s.partitions, s.configs()["retention.ms"]) for s in cluster] == [
        (s.name, s.partitions, s.configs()["retention.ms"]) for s in plain
    ]
    assert all(s.configs()["min.insync.replicas"] == "2" for s in cluster)


def test_a_profile_the_file_does_not_have_is_a_clear_error() -> None:
    settings = dataclasses.replace(KafkaSettings(), topics_profile="clustr")
    with pytest.raises(ConfigError, match=r"no \[profile.clustr\].*it has: cluster"):
        load_layout(settings)
