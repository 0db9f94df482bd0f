"""What a stage gives the worker loop, and what becomes of a record it fails.

A stage is a :class:`StageHandler`: it handles one record and returns what to
produce. :class:`Handling` runs it for the worker, so that every record
started ends with outputs to commit, whatever happens:

* handled: the stage's outputs;
* failed (a :class:`~mediaflow.errors.MediaflowError`, or any other
  exception, which is a bug of the stage): the
  :class:`~mediaflow.kafka.retry.RetryPolicy` decides between a retry tier
  and a dead letter, the :class:`~mediaflow.kafka.routing.FailureRouter`
  builds that record, and the stage adds the events that describe the
  failure; a poison record never stalls its partition;
* its failure handling raising in turn: a dead letter of kind ``internal``,
  built by a path that cannot fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import datetime
from typing import Protocol

from mediaflow.errors import ErrorKind, MediaflowError
from mediaflow.kafka.records import InRecord, OutRecord
from mediaflow.kafka.retry import DeadLetter, Decision, RetryPolicy
from mediaflow.kafka.routing import FailureRouter, describe_internal
from mediaflow.logging import get_logger, record_context
from mediaflow.metrics import DEAD_LETTERS, OUTCOMES

log = get_logger("mediaflow.worker")


class StageHandler(Protocol):
    """What a stage gives the worker loop."""

    name: str

    async def handle(self, record: InRecord) -> Sequence[OutRecord]:
        """Process one record; return what to produce. Raise a MediaflowError to fail it."""
        ...

    def media_id_of(self, record: InRecord) -> str | None:
        """Best-effort media id of a record, for dead-letter headers."""
        ...

    def failure_records(
        self, record: InRecord, decision: Decision, now: datetime
    ) -> Sequence[OutRecord]:
        """Events that describe a failure (e.g. MediaDownloadFailed) to produce with it."""
        ...


class Handling:
    """Runs a stage on one record and turns every outcome into records to produce.

    Args:
        stage: the stage's transform.
        policy: where failures go.
        router: builds retry and dead-letter records.
        clock: wall clock for due times and headers.

    """

    def __init__(
        self,
        stage: StageHandler,
        policy: RetryPolicy,
        router: FailureRouter,
        clock: Callable[[], datetime],
    ) -> None:
        self._stage = stage
        self._policy = policy
        self._router = router
        self._clock = clock

    async def process(self, record: InRecord) -> list[OutRecord]:
        """The records to produce for ``record``: its outputs, or its failure's."""
        with record_context(topic=record.topic, partition=record.partition, offset=record.offset):
            try:
                outputs = list(await self._stage.handle(record))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must not stall the partition either
                return self._handle_failure(record, exc)
            OUTCOMES.labels(self._stage.name, "ok", "").inc()
            return outputs

    def internal(self, record: InRecord, failure: BaseException) -> list[OutRecord]:
        """The dead letter of a record whose failure handling raised; it cannot fail itself.

        The stage is then asked, once more, for the events that describe it (a
        ``MediaDeadLettered`` of kind ``internal``), so the media's state does
        not stay "retrying"; if that raises too, the dead letter goes alone.
        The record is safe once the dead letter exists: the events, log and
        metric after it are the only errors ignored.
        """
        dead = self._router.internal(record, failure)
        events: list[OutRecord] = []
        with suppress(Exception):
            error = MediaflowError(describe_internal(failure), kind=ErrorKind.INTERNAL)
            decision = DeadLetter(ErrorKind.INTERNAL, error.message, record.attempt, error)
            events = list(self._stage.failure_records(record, decision, self._clock()))
        with suppress(Exception):
            OUTCOMES.labels(self._stage.name, "dead_lettered", ErrorKind.INTERNAL.value).inc()
            DEAD_LETTERS.labels(self._stage.name, ErrorKind.INTERNAL.value).inc()
            log.error(
                "failure_handling_failed",
                stage=self._stage.name,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                error_type=type(failure).__name__,
                exc_info=failure,
            )
        return [dead, *events]

    def _handle_failure(self, record: InRecord, exc: Exception) -> list[OutRecord]:
        """Route a failed record; if routing it raises in turn, dead-letter it as ``internal``."""
        try:
            if not isinstance(exc, MediaflowError):
                log.error("stage_crashed", stage=self._stage.name, exc_info=exc)
                exc = MediaflowError(f"unexpected {type(exc).__name__}: {exc}")
            return self._failed(record, exc)
        except Exception as failure:
            return self.internal(record, failure)

    def _failed(self, record: InRecord, error: MediaflowError) -> list[OutRecord]:
        now = self._clock()
        decision = self._policy.decide(record.attempt, error, now)
        media_id = self._stage.media_id_of(record)
        outcome = "dead_lettered" if isinstance(decision, DeadLetter) else "retry"
        OUTCOMES.labels(self._stage.name, outcome, decision_kind(decision)).inc()
        if isinstance(decision, DeadLetter):
            DEAD_LETTERS.labels(self._stage.name, decision.kind.value).inc()
        log.warning(
            "record_failed",
            stage=self._stage.name,
            media_id=media_id,
            attempt=record.attempt,
            error_kind=error.kind.value,
            error=error.message,
            outcome=outcome,
        )
        routed = self._router.route(record, decision, now, media_id)
        return [routed, *self._stage.failure_records(record, decision, now)]


def decision_kind(decision: Decision) -> str:
    """The error kind a decision carries (metrics label)."""
    return decision.kind.value if isinstance(decision, DeadLetter) else decision.error.kind.value


__all__ = ["Handling", "StageHandler", "decision_kind"]
