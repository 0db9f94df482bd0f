"""librdkafka client construction and error translation.

Every Kafka client in mediaflow is built here, from :class:`KafkaSettings`,
so security settings for real clusters (SASL, SSL) apply everywhere at once.
librdkafka's :class:`confluent_kafka.KafkaError` is translated at this
boundary into :mod:`mediaflow.errors` (see :func:`translate`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from mediaflow.config import KafkaSettings, property_variable
from mediaflow.errors import BrokerUnavailable, ConfigError, MediaflowError, UsageError
from mediaflow.logging import get_logger
from mediaflow.metrics import CONSUMER_LAG

log = get_logger("mediaflow.kafka")

Client = TypeVar("Client")


class FatalKafkaError(UsageError):
    """librdkafka reported a fatal error: the client is unusable, stop the process.

    Attributes:
        fenced: a newer copy with the same ``transactional.id`` or
            ``group.instance.id`` took over (two copies share an instance
            name); otherwise the client broke on its own (an
            ``INVALID_TXN_STATE`` after a broker outage) and a restart helps.

    """

    def __init__(self, message: str, *, fenced: bool = False) -> None:
        super().__init__(message)
        self.fenced = fenced


_FENCED_CODES = frozenset(
    {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.FENCED_INSTANCE_ID}
)
"""The error codes that say another copy with the same identity took over."""


class AbortableKafkaError(MediaflowError):
    """The current transaction must be aborted and its input re-read."""


PRODUCER_DEFAULTS: dict[str, Any] = {
    # Topics are code (``mediaflow topics apply``): a producer must not create one
    # with the broker's defaults (one partition, its retention) where the broker allows it.
    "allow.auto.create.topics": False,
    # A webhook envelope (a body up to 1 MiB, and more) must fit, here and in the
    # dead letter that may carry it; deploy/topics.toml lets those topics take it.
    "message.max.bytes": 2 * 1024 * 1024,
    "compression.type": "zstd",
    "linger.ms": 5,
    "batch.size": 512 * 1024,
    "queue.buffering.max.kbytes": 256 * 1024,
}
"""Producer tuning; a ``MEDIAFLOW_KAFKA_PROP_*`` property changes any of it."""

CONSUMER_DEFAULTS: dict[str, Any] = {
    "max.poll.interval.ms": 300_000,
    "session.timeout.ms": 45_000,
    "statistics.interval.ms": 5_000,
}
"""Consumer tuning; a ``MEDIAFLOW_KAFKA_PROP_*`` property changes any of it."""


@dataclass(frozen=True, slots=True)
class Guarantee:
    """A property mediaflow's promises rest on: set by every client, never weakened."""

    value: Any
    accepted: tuple[str, ...]
    """Spellings of the same value a user may give (lower case)."""
    aliases: tuple[str, ...]
    """librdkafka's other names for the property, which would otherwise slip past."""
    why: str


PRODUCER_GUARANTEES = {
    "enable.idempotence": Guarantee(
        True, ("true",), (), "a retried send must not duplicate or reorder records"
    ),
    "acks": Guarantee(
        "all",
        ("all", "-1"),
        ("request.required.acks",),
        "a record counts as written only once every in-sync replica has it",
    ),
}
CONSUMER_GUARANTEES = {
    "enable.auto.commit": Guarantee(
        False,
        ("false",),
        ("auto.commit.enable",),
        "an offset is committed only after its work is durable",
    ),
    "enable.auto.offset.store": Guarantee(
        False, ("false",), (), "an offset is committed only after its work is durable"
    ),
    "isolation.level": Guarantee(
        "read_committed", ("read_committed",), (), "aborted transactions must stay unseen"
    ),
    "auto.offset.reset": Guarantee(
        "earliest",
        ("earliest", "smallest", "beginning"),
        (),
        "a new consumer group must start at the oldest record, not skip any",
    ),
}


def client_config(
    settings: KafkaSettings,
    *,
    defaults: Mapping[str, Any] | None = None,
    guarantees: Mapping[str, Guarantee] | None = None,
    stage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The librdkafka configuration of one client, from lowest to highest precedence.

    1. connection: ``bootstrap.servers``, ``client.id``, error and log callbacks;
    2. ``defaults``: mediaflow's tuning;
    3. the user's ``MEDIAFLOW_KAFKA_PROP_*`` properties (SASL, SSL, tuning...);
    4. ``stage``: what a stage derives from its own settings (the receiver's
       ``linger.ms`` from ``MEDIAFLOW_WEBHOOK_LINGER_MS``, ``batch.num.messages``
       from ``MEDIAFLOW_WEBHOOK_BATCH_MESSAGES``); a user property it
       replaces is logged, not silently dropped;
    5. ``guarantees``, which no property may weaken.

    Raises:
        ConfigError: a user property contradicts a guarantee; names the variable and why.

    """
    user = dict(settings.properties)
    stage = dict(stage or {})
    for name, guarantee in (guarantees or {}).items():
        for spelling in (name, *guarantee.aliases):
            given = user.pop(spelling, None)
            if given is not None and str(given).strip().lower() not in guarantee.accepted:
                raise ConfigError(
                    f"{property_variable(spelling)}={given} is refused: mediaflow sets "
                    f"{name}={str(guarantee.value).lower()} because {guarantee.why}"
                )
        stage[name] = guarantee.value
    for name in sorted(user.keys() & stage.keys()):
        log.warning(
            "kafka_property_replaced",
            property=name,
            variable=property_variable(name),
            reason="this client sets it from its own settings",
        )
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": settings.client_id,
        "error_cb": _log_client_error,
        # librdkafka's own log lines go through stdlib logging instead of raw stderr.
        "logger": logging.getLogger("librdkafka"),
        **(defaults or {}),
        **user,
        **stage,
    }


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
    return _create(AdminClient, client_config(settings))


def producer(settings: KafkaSettings, **overrides: Any) -> Producer:
    """Return an idempotent, ``acks=all`` producer (zstd-compressed unless configured otherwise).

    Args:
        settings: where the cluster is, and the user's properties.
        overrides: librdkafka properties the stage sets itself, winning over the
            user's (``transactional.id``, the receiver's ``linger.ms``...).

    Raises:
        ConfigError: a property weakens a guarantee, or librdkafka refuses one.

    """
    config = client_config(
        settings, defaults=PRODUCER_DEFAULTS, guarantees=PRODUCER_GUARANTEES, stage=overrides
    )
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

    Args:
        settings: where the cluster is, and the user's properties.
        group_id: the consumer group.
        overrides: librdkafka properties the caller sets itself, winning over the user's.

    Raises:
        ConfigError: a property weakens a guarantee, or librdkafka refuses one.

    """
    stage = {"group.id": group_id, "stats_cb": _record_lag(group_id), **overrides}
    config = client_config(
        settings, defaults=CONSUMER_DEFAULTS, guarantees=CONSUMER_GUARANTEES, stage=stage
    )
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
    if error.code() == KafkaError.MSG_SIZE_TOO_LARGE:
        text += (
            "; raise the producer's message.max.bytes (MEDIAFLOW_KAFKA_PROP_MESSAGE_MAX_BYTES) "
            "and the topic's max_message_bytes in the topics file, then mediaflow topics apply"
        )
    if error.fatal():
        return FatalKafkaError(text, fenced=error.code() in _FENCED_CODES)
    if getattr(error, "txn_requires_abort", lambda: False)():
        return AbortableKafkaError(text)
    return BrokerUnavailable(text)


def fatal_consume_error(error: KafkaError) -> FatalKafkaError | None:
    """The :class:`FatalKafkaError` a consumer's error event stands for; ``None`` if not fatal.

    librdkafka hands a fatal consumer error out as a ``_FATAL`` event whose
    ``fatal()`` flag is unset; for a classic-protocol group member its one
    cause is ``FENCED_INSTANCE_ID``: another member joined with this one's
    ``group.instance.id``.
    """
    text = f"{error.name()}: {error.str()}"
    if error.code() in (KafkaError._FATAL, KafkaError.FENCED_INSTANCE_ID):
        return FatalKafkaError(text, fenced=True)
    if error.fatal():
        return FatalKafkaError(text, fenced=error.code() in _FENCED_CODES)
    return None


__all__ = [
    "CONSUMER_DEFAULTS",
    "CONSUMER_GUARANTEES",
    "PRODUCER_DEFAULTS",
    "PRODUCER_GUARANTEES",
    "AbortableKafkaError",
    "FatalKafkaError",
    "Guarantee",
    "admin_client",
    "client_config",
    "consumer",
    "fatal_consume_error",
    "producer",
    "transactional_producer",
    "translate",
]
