"""Topics as code: load ``deploy/topics.toml``, apply it, and detect drift.

``apply`` is idempotent: it creates missing topics, raises partition counts
and alters configuration that differs, and reports each change. It never
deletes a topic and never lowers a partition count (Kafka cannot); those show
up as drift that ``check`` reports and a person resolves.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from mediaflow.config import KafkaSettings
from mediaflow.errors import BrokerUnavailable, ConfigError
from mediaflow.kafka.clients import PRODUCER_DEFAULTS
from mediaflow.kafka.retry import RetryTier

BROKER_MAX_MESSAGE_BYTES = 1_048_588
"""Kafka's default ``message.max.bytes``: a topic's limit when it sets none of its own."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One declared topic (name already prefixed)."""

    name: str
    role: str
    partitions: int
    replication_factor: int
    retention_ms: int
    cleanup_policy: str
    min_insync_replicas: int
    delay_s: float | None = None
    max_message_bytes: int | None = None
    """The largest record batch the topic takes; the broker's default when ``None``."""

    def configs(self) -> dict[str, str]:
        """The topic-level configuration this spec manages."""
        configs = {
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": self.cleanup_policy,
            "min.insync.replicas": str(self.min_insync_replicas),
        }
        if self.max_message_bytes is not None:
            configs["max.message.bytes"] = str(self.max_message_bytes)
        return configs


@dataclass(frozen=True, slots=True)
class TopicLayout:
    """All declared topics, with lookups by role."""

    specs: tuple[TopicSpec, ...]

    def by_role(self, role: str) -> TopicSpec:
        """The single topic playing ``role`` (e.g. ``media_events``)."""
        matches = [s for s in self.specs if s.role == role]
        if len(matches) != 1:
            raise ConfigError(f"topics file must declare exactly one topic with role {role!r}")
        return matches[0]

    @property
    def retry_tiers(self) -> tuple[RetryTier, ...]:
        """Retry tiers in declared order."""
        return tuple(
            RetryTier(s.name, float(s.delay_s or 0)) for s in self.specs if s.role == "retry"
        )

    @property
    def notify_retry_tiers(self) -> tuple[RetryTier, ...]:
        """The notifier's retry tiers in declared order (role ``notify_retry``)."""
        return tuple(
            RetryTier(s.name, float(s.delay_s or 0)) for s in self.specs if s.role == "notify_retry"
        )

    @property
    def webhooks(self) -> str:
        """Raw webhook envelopes."""
        return self.by_role("webhooks").name

    @property
    def download_requests(self) -> str:
        """Download requests from the detector."""
        return self.by_role("download_requests").name

    @property
    def media_events(self) -> str:
        """The media event log."""
        return self.by_role("media_events").name

    @property
    def dead_letters(self) -> str:
        """Dead letters of every stage."""
        return self.by_role("dead_letters").name

    @property
    def media_state(self) -> str:
        """Compacted current state per media."""
        return self.by_role("media_state").name


def record_limit(settings: KafkaSettings, spec: TopicSpec) -> int:
    """The largest record a mediaflow producer can write to the topic of ``spec``.

    The smaller of the topic's ``max.message.bytes`` (the broker's default when
    the topics file sets none) and the producer's ``message.max.bytes``
    (mediaflow's default, or ``MEDIAFLOW_KAFKA_PROP_MESSAGE_MAX_BYTES``).

    Raises:
        ConfigError: ``MEDIAFLOW_KAFKA_PROP_MESSAGE_MAX_BYTES`` is not a number.
    """
    given = settings.properties.get("message.max.bytes", PRODUCER_DEFAULTS["message.max.bytes"])
    try:
        producer_limit = int(given)
    except ValueError as exc:
        raise ConfigError(
            f"MEDIAFLOW_KAFKA_PROP_MESSAGE_MAX_BYTES={given!r} is not a number of bytes"
        ) from exc
    return min(spec.max_message_bytes or BROKER_MAX_MESSAGE_BYTES, producer_limit)


def load_layout(settings: KafkaSettings) -> TopicLayout:
    """Read the topics file named by the settings, applying the topic prefix and profile.

    A ``[profile.<name>]`` table (chosen by ``MEDIAFLOW_TOPICS_PROFILE``)
    overrides its keys in every topic: one file declares the single-node
    defaults and, say, a replicated cluster's ``replication_factor``.

    Raises:
        ConfigError: the file is missing, not TOML, a topic lacks a field, or
            the profile chosen is not in the file.

    """
    path = Path(settings.topics_file)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"topics file {path} does not exist (MEDIAFLOW_TOPICS_FILE)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"topics file {path} is not valid TOML: {exc}") from exc
    defaults = data.get("defaults", {})
    profile: dict[str, object] = {}
    if settings.topics_profile:
        profiles = data.get("profile", {})
        if settings.topics_profile not in profiles:
            raise ConfigError(
                f"topics file {path} has no [profile.{settings.topics_profile}] "
                f"(MEDIAFLOW_TOPICS_PROFILE); it has: {', '.join(sorted(profiles)) or 'none'}"
            )
        profile = profiles[settings.topics_profile]
    specs = []
    for entry in data.get("topic", []):
        # A profile overlays every topic (a deployment's replication, say).
        merged = {**defaults, **entry, **profile}
        try:
            specs.append(
                TopicSpec(
                    name=settings.topic(merged["name"]),
                    role=merged["role"],
                    partitions=int(merged["partitions"]),
                    replication_factor=int(merged["replication_factor"]),
                    retention_ms=int(merged["retention_ms"]),
                    cleanup_policy=str(merged["cleanup_policy"]),
                    min_insync_replicas=int(merged["min_insync_replicas"]),
                    delay_s=merged.get("delay_s"),
                    max_message_bytes=merged.get("max_message_bytes"),
                )
            )
        except KeyError as exc:
            raise ConfigError(f"topic {entry.get('name', '?')!r} in {path} lacks {exc}") from exc
    return TopicLayout(tuple(specs))


@dataclass(frozen=True, slots=True)
class Drift:
    """One difference between the declared and the actual cluster."""

    topic: str
    what: str
    declared: str
    actual: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.what} declared {self.declared}, actual {self.actual}"


def check(admin: AdminClient, specs: Sequence[TopicSpec], timeout: float = 15) -> list[Drift]:
    """List every difference between ``specs`` and the cluster.

    Raises:
        BrokerUnavailable: the cluster did not answer in time.

    """
    metadata = _metadata(admin, timeout)
    drift: list[Drift] = []
    existing = [s for s in specs if s.name in metadata.topics]
    for spec in specs:
        if spec.name not in metadata.topics:
            drift.append(Drift(spec.name, "existence", "present", "missing"))
            continue
        partitions = metadata.topics[spec.name].partitions
        if len(partitions) != spec.partitions:
            drift.append(Drift(spec.name, "partitions", str(spec.partitions), str(len(partitions))))
        replicas = min((len(p.replicas) for p in partitions.values()), default=0)
        if replicas != spec.replication_factor:
            drift.append(
                Drift(spec.name, "replication_factor", str(spec.replication_factor), str(replicas))
            )
    for spec, actual in zip(existing, _describe_configs(admin, existing, timeout), strict=True):
        for key, declared in spec.configs().items():
            if actual.get(key) != declared:
                drift.append(Drift(spec.name, key, declared, str(actual.get(key))))
    return drift


def apply(admin: AdminClient, specs: Sequence[TopicSpec], timeout: float = 30) -> list[str]:
    """Create or update topics to match ``specs``; return one line per change made.

    Raises:
        BrokerUnavailable: the cluster did not answer in time.
        ConfigError: a change Kafka cannot make (fewer partitions, other replication).

    """
    changes: list[str] = []
    metadata = _metadata(admin, timeout)
    missing = [s for s in specs if s.name not in metadata.topics]
    if missing:
        new = [
            NewTopic(s.name, s.partitions, s.replication_factor, config=s.configs())
            for s in missing
        ]
        _wait(
            admin.create_topics(new, operation_timeout=timeout),
            timeout,
            tolerate="TOPIC_ALREADY_EXISTS",
        )
        changes += [f"created {s.name} ({s.partitions} partitions)" for s in missing]
        _wait_until_visible(admin, [s.name for s in missing], timeout)
    for drift in check(admin, [s for s in specs if s not in missing], timeout):
        spec = next(s for s in specs if s.name == drift.topic)
        if drift.what == "partitions":
            if int(drift.actual) > spec.partitions:
                raise ConfigError(
                    f"{spec.name} has {drift.actual} partitions, the file declares "
                    f"{spec.partitions}; Kafka cannot remove partitions: "
                    "raise the number in deploy/topics.toml"
                )
            _wait(admin.create_partitions([NewPartitions(spec.name, spec.partitions)]), timeout)
            changes.append(f"{spec.name}: partitions {drift.actual} -> {spec.partitions}")
        elif drift.what == "replication_factor":
            raise ConfigError(f"{drift}; change it with kafka-reassign-partitions, not here")
        else:
            resource = ConfigResource(
                ConfigResource.Type.TOPIC,
                spec.name,
                incremental_configs=[
                    ConfigEntry(
                        drift.what, drift.declared, incremental_operation=AlterConfigOpType.SET
                    )
                ],
            )
            _wait(admin.incremental_alter_configs([resource]), timeout)
            changes.append(f"{spec.name}: {drift.what} {drift.actual} -> {drift.declared}")
    return changes


def delete(admin: AdminClient, names: Sequence[str], timeout: float = 30) -> None:
    """Delete topics and wait until the controller has accepted it (missing ones are fine).

    ``delete_topics`` only queues the request: a process that exits right
    after it may never send it (test and bench runs left thousands of topics
    behind that way).

    Raises:
        BrokerUnavailable: the cluster did not answer in time.
    """
    if names:
        _wait(
            admin.delete_topics(list(names), operation_timeout=timeout),
            timeout,
            tolerate="UNKNOWN_TOPIC_OR_PART",
        )


def _metadata(admin: AdminClient, timeout: float):  # type: ignore[no-untyped-def]
    try:
        return admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise BrokerUnavailable(
            f"Kafka did not answer a metadata request: {exc.args[0].str()}"
        ) from exc


def _wait_until_visible(admin: AdminClient, names: Sequence[str], timeout: float) -> None:
    # CreateTopics returns once the controller has the topic; brokers learn of it,
    # and elect partition leaders, a moment later: a client right now would see it
    # missing or get NOT_LEADER_FOR_PARTITION.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        topics = _metadata(admin, timeout).topics
        if all(name in topics and _ready(topics[name]) for name in names):
            return
        time.sleep(0.1)
    raise BrokerUnavailable(f"created topics not visible after {timeout} s: {', '.join(names)}")


def _ready(topic: Any) -> bool:
    return not topic.error and all(p.leader >= 0 and not p.error for p in topic.partitions.values())


def _describe_configs(
    admin: AdminClient, specs: Sequence[TopicSpec], timeout: float
) -> list[dict[str, str]]:
    if not specs:
        return []
    resources = [ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in specs]
    futures = admin.describe_configs(resources, request_timeout=timeout)
    return [{k: str(v.value) for k, v in futures[r].result(timeout).items()} for r in resources]


def _wait(futures: dict, timeout: float, tolerate: str | None = None) -> None:  # type: ignore[type-arg]
    for future in futures.values():
        try:
            future.result(timeout)
        except KafkaException as exc:
            if tolerate and exc.args[0].name() == tolerate:
                continue
            raise BrokerUnavailable(f"topic change failed: {exc.args[0].str()}") from exc


__all__ = [
    "BROKER_MAX_MESSAGE_BYTES",
    "delete",
    "Drift",
    "TopicLayout",
    "TopicSpec",
    "apply",
    "check",
    "load_layout",
    "record_limit",
]
