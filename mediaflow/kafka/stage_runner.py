"""Run one processor stage as a process: what every stage does the same way.

A stage module supplies a :class:`StageSpec`: its name, its consumer group,
whether it commits through Kafka transactions, and ``open``, which builds
its loop (its handler and collaborators) from the :class:`StageClients`
named here. :func:`run_stage` does the rest, for every stage alike:

* the names: consumer group ``{topic prefix}{group}``; for a transactional
  stage, ``transactional.id`` and ``group.instance.id`` are both
  ``{group id}-{MEDIAFLOW_INSTANCE_NAME}``;
* Prometheus metrics on ``MEDIAFLOW_METRICS_PORT``, when it is set;
* SIGTERM and SIGINT call the loop's ``stop()``, nothing else
  (:func:`~mediaflow.signals.stop_on_signals`);
* a fatal Kafka error ends the process with one log line saying what
  happened and what to do, and :data:`EXIT_KAFKA_FATAL`.

Static membership (``group.instance.id``) is set for the transactional
stages (detector, downloader), whose copies already need a unique, stable
instance name for their ``transactional.id``: it adds no requirement. A
copy that dies without leaving the group (SIGKILL, a crash, a lost host)
holds its partitions until ``session.timeout.ms`` with or without it; with
it, the same copy restarted (a StatefulSet pod, a systemd template unit,
``mediaflow run all``) takes them back at once, and the other copies are not
disturbed by a rebalance (their downloads in flight go on). The cost: a
static member does not leave the group on a graceful stop either, so the
partitions of a copy stopped for good (scaling down) wait
``session.timeout.ms`` (45 s by default) before another copy takes them;
nothing is lost. The projection keeps dynamic membership: it is not
transactional, and a stopped copy hands its partitions over at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import Consumer, Producer
from prometheus_client import start_http_server

from mediaflow.config import KafkaSettings, Settings
from mediaflow.errors import ConfigError
from mediaflow.kafka import clients
from mediaflow.kafka.clients import FatalKafkaError
from mediaflow.logging import get_logger
from mediaflow.signals import stop_on_signals

log = get_logger("mediaflow.stage")

EXIT_KAFKA_FATAL = 75
"""Exit status of a stage stopped by a fatal Kafka error (``EX_TEMPFAIL``).

A supervisor restarts it like a crash: a fresh client recovers from a client
broken by an outage; a copy fenced by a twin with its instance name says so
in its log line, and restarting it does not help until the names differ.
"""

_FENCED_HINT = (
    "another copy with the same MEDIAFLOW_INSTANCE_NAME took over (a restart of this "
    "copy does that on purpose); if two copies run with that name, give each its own"
)
_BROKEN_HINT = (
    "the Kafka client cannot go on (this can follow a broker outage); restart the "
    "process: nothing committed is lost and uncommitted work is read again"
)


class StageLoop(Protocol):
    """What a stage's ``open`` yields: a loop that runs until stopped (or drained)."""

    def stop(self) -> None:
        """Ask the loop to finish its work in hand and return. Called from signal handlers."""
        ...

    async def run(self, *, idle_exit_s: float | None = None) -> None:
        """Run until :meth:`stop`, or until idle for ``idle_exit_s`` (drain mode)."""
        ...


@dataclass(frozen=True, slots=True)
class StageClients:
    """The Kafka identity of one copy of a stage, and its clients built with it.

    Attributes:
        kafka: the cluster and the user's properties.
        group_id: the consumer group.
        instance_id: ``{group_id}-{instance name}``: the ``transactional.id``
            and the ``group.instance.id`` of a transactional stage.
        transactional: exactly-once through Kafka transactions, with static membership.

    """

    kafka: KafkaSettings
    group_id: str
    instance_id: str
    transactional: bool = True

    def consumer(self) -> Consumer:
        """A ``read_committed`` consumer in the group; a static member when transactional.

        Raises:
            ConfigError: a property weakens a guarantee, or librdkafka refuses one.

        """
        static = {"group.instance.id": self.instance_id} if self.transactional else {}
        return clients.consumer(self.kafka, self.group_id, **static)

    def producer(self) -> Producer:
        """A transactional producer with :attr:`instance_id`, or a plain one.

        Raises:
            ConfigError: a property weakens a guarantee, or librdkafka refuses one.

        """
        if self.transactional:
            return clients.transactional_producer(self.kafka, self.instance_id)
        return clients.producer(self.kafka)


@dataclass(frozen=True, slots=True)
class StageSpec:
    """A processor stage, as :func:`run_stage` runs it.

    Attributes:
        name: the role's name (logs, metrics labels).
        group: the consumer group's logical name (prefixed like the topics).
        open: builds the stage's loop and its collaborators from the settings
            and the clients; closes what it opened when the block ends.
        transactional: commits through Kafka transactions (static membership too).

    """

    name: str
    group: str
    open: Callable[[Settings, StageClients], AbstractAsyncContextManager[StageLoop]]
    transactional: bool = True

    def clients(self, settings: Settings) -> StageClients:
        """The identity and clients of this copy (``settings.instance_name``)."""
        group_id = settings.kafka.topic(self.group)
        return StageClients(
            settings.kafka,
            group_id,
            f"{group_id}-{settings.instance_name}",
            self.transactional,
        )


def run_stage(spec: StageSpec, settings: Settings, *, idle_exit_s: float | None = None) -> int:
    """Run one copy of a stage in the foreground until SIGTERM/SIGINT, or idle.

    Args:
        spec: the stage.
        settings: the effective settings.
        idle_exit_s: drain mode: return once nothing arrived for this long.

    Returns:
        0 after a clean stop; :data:`EXIT_KAFKA_FATAL` after a fatal Kafka error.

    Raises:
        ConfigError: the metrics port cannot be listened on, or the stage
            refused its configuration.

    """
    stage_clients = spec.clients(settings)
    if settings.metrics_port:
        _serve_metrics(spec.name, settings)
    try:
        asyncio.run(_run(spec.open(settings, stage_clients), idle_exit_s))
    except FatalKafkaError as exc:
        log.error(
            "stage_stopped_fatal",
            stage=spec.name,
            reason=exc.message,
            fenced=exc.fenced,
            group_id=stage_clients.group_id,
            instance_id=stage_clients.instance_id,
            exit_code=EXIT_KAFKA_FATAL,
            hint=_FENCED_HINT if exc.fenced else _BROKEN_HINT,
        )
        return EXIT_KAFKA_FATAL
    return 0


async def _run(opening: AbstractAsyncContextManager[StageLoop], idle_exit_s: float | None) -> None:
    async with opening as loop:
        with stop_on_signals(loop.stop):
            await loop.run(idle_exit_s=idle_exit_s)


def _serve_metrics(stage: str, settings: Settings) -> None:
    try:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: "
            f"{exc.strerror or exc}; stop what holds it, or change MEDIAFLOW_METRICS_HOST "
            "and MEDIAFLOW_METRICS_PORT"
        ) from exc
    log.info("metrics_listening", stage=stage, port=settings.metrics_port)


__all__ = ["EXIT_KAFKA_FATAL", "StageClients", "StageLoop", "StageSpec", "run_stage"]
