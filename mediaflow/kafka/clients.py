"""librdkafka client construction and error translation.

Every Kafka client in mediaflow is built here, from :class:`KafkaSettings`,
so security settings for real clusters (SASL, SSL) apply everywhere at once.
librdkafka's :class:`confluent_kafka.KafkaError` is translated at this
boundary into :mod:`mediaflow.errors` (see :func:`translate`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from mediaflow.config import KafkaSettings
from mediaflow.errors import BrokerUnavailable, ConfigError, MediaflowError, UsageError
from mediaflow.logging import get_logger
from mediaflow.metrics import CONSUMER_LAG

log = get_logger("mediaflow.kafka")

Client = TypeVar("Client")


class FatalKafkaError(UsageError):
    """librdkafka reported a fatal error (e.g. this producer was fenced): stop the process."""


class AbortableKafkaError(MediaflowError):
    """The current transaction must be aborted and its input re-read."""


def _base(settings: KafkaSettings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": settings.client_id,
        "error_cb": _log_client_error,
        # librdkafka's own log lines go through stdlib logging instead of raw stderr.
        "logger": logging.getLogger("librdkafka"),
    }
    config.update(settings.properties)
    return config


def _create(kind: Callable[[dict[str, Any]], Client], config: dict[str, Any]) -> Client:
    """Build a librdkafka client; a property it refuses becomes a :class:`ConfigError`.

    Without this, a mistyped ``MEDIAFLOW_KAFKA_PROP_*`` or an out-of-range
    setting ended the process with a traceback from inside confluent-kafka.
    """
    try:
        return kind(config)
    except KafkaException as exc:
        raise ConfigError(
            f"the Kafka client configuration was refused: {exc.args[0].str().strip()} "
            "(check MEDIAFLOW_KAFKA_PROP_* and the setting that feeds that property)"
        ) from exc


def _log_client_error(error: KafkaError) -> None:
    # librdkafka reports transient broker trouble here and retries by itself.
    if error.fatal():
        log.error("kafka_fatal_error", code=error.name(), reason=error.str())
    else:
        log.warning("kafka_client_error", code=error.name(), reason=error.str())


def admin_client(settings: KafkaSettings) -> AdminClient:
    """Return an AdminClient for topic management and group inspection."""
    return _create(AdminClient, _base(settings))


def producer(settings: KafkaSettings, **overrides: Any) -> Producer:
    """Return an idempotent, ``acks=all``, zstd-compressed producer.

    Args:
        settings: where the cluster is.
        overrides: librdkafka properties that win over the defaults
            (``transactional.id``, ``linger.ms``...).

    """
    config = _base(settings)
    config.update(
        {
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "zstd",
            "linger.ms": 5,
            "batch.size": 512 * 1024,
            "queue.buffering.max.kbytes": 256 * 1024,
        }
    )
    config.update(overrides)
    return _create(Producer, config)


def transactional_producer(settings: KafkaSettings, transactional_id: str) -> Producer:
    """Return a producer for exactly-once consume-transform-produce.

    ``transactional_id`` must be stable per processor copy so that a restarted
    copy fences its zombie predecessor.
    """
    return producer(
        settings,
        **{"transactional.id": transactional_id, "transaction.timeout.ms": 60_000},
    )


def consumer(settings: KafkaSettings, group_id: str, **overrides: Any) -> Consumer:
    """Return a ``read_committed`` consumer with auto-commit off.

    Offsets are committed by the worker loop only after the work is durable,
    inside the output transaction.
    """
    config = _base(settings)
    config.update(
        {
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "max.poll.interval.ms": 300_000,
            "session.timeout.ms": 45_000,
            "statistics.interval.ms": 5_000,
            "stats_cb": _record_lag(group_id),
        }
    )
    config.update(overrides)
    return _create(Consumer, config)


def _record_lag(group_id: str) -> Any:
    def on_stats(raw: str) -> None:
        stats = json.loads(raw)
        for topic, tstats in stats.get("topics", {}).items():
            for partition, pstats in tstats.get("partitions", {}).items():
                lag = pstats.get("consumer_lag")
                if partition != "-1" and lag is not None and lag >= 0:
                    CONSUMER_LAG.labels(group_id, topic, partition).set(lag)

    return on_stats


def translate(exc: KafkaException | BufferError) -> MediaflowError:
    """Map a librdkafka exception to the mediaflow error tree, keeping its code.

    Fatal -> :class:`FatalKafkaError`; abortable transaction -> :class:`AbortableKafkaError`;
    everything else (retriable, timeouts, queue full) -> :class:`BrokerUnavailable`.
    """
    if isinstance(exc, BufferError):
        return BrokerUnavailable("the producer's local queue is full")
    error: KafkaError = exc.args[0]
    text = f"{error.name()}: {error.str()}"
    if error.fatal():
        return FatalKafkaError(text)
    if getattr(error, "txn_requires_abort", lambda: False)():
        return AbortableKafkaError(text)
    return BrokerUnavailable(text)


__all__ = [
    "AbortableKafkaError",
    "FatalKafkaError",
    "admin_client",
    "consumer",
    "producer",
    "transactional_producer",
    "translate",
]
