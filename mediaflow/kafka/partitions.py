"""What the worker loop knows of each assigned partition: queued, running, finished.

Offsets are kept in arrival order, and only the *contiguous* finished prefix
of a partition may be committed: committing an offset says every record
before it is done.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from mediaflow.kafka.records import InRecord, OutRecord

TP = tuple[str, int]
"""A partition: (topic, partition number)."""

Ready = dict[TP, list[int]]
"""The committable offsets of each partition, oldest first."""


@dataclass(eq=False)
class PartitionState:
    """Progress of one assigned partition."""

    queued: deque[InRecord] = field(default_factory=deque)
    order: deque[int] = field(default_factory=deque)
    running: dict[int, asyncio.Task[list[OutRecord]]] = field(default_factory=dict)
    finished: dict[int, list[OutRecord]] = field(default_factory=dict)
    oldest_finished_at: float | None = None
    paused: bool = False

    def enqueue(self, record: InRecord) -> None:
        """Queue a fetched record; its offset now waits to be finished."""
        self.queued.append(record)
        self.order.append(record.offset)

    def head_is_due(self, now: datetime) -> bool:
        """Whether the next queued record may start (no due time, or it has passed)."""
        return bool(self.queued) and (self.queued[0].due_at is None or self.queued[0].due_at <= now)

    def finish(self, offset: int, outputs: list[OutRecord]) -> None:
        """Record what a finished record produces, until it is committed."""
        self.finished[offset] = outputs
        if self.oldest_finished_at is None:
            self.oldest_finished_at = time.monotonic()

    def ready_prefix(self) -> list[int]:
        """The finished offsets that can be committed: the contiguous prefix."""
        ready = []
        for offset in self.order:
            if offset not in self.finished:
                break
            ready.append(offset)
        return ready


class Partitions:
    """The states of the assigned partitions, by (topic, partition)."""

    def __init__(self) -> None:
        self._states: dict[TP, PartitionState] = {}

    def __len__(self) -> int:
        return len(self._states)

    def __iter__(self) -> Iterator[TP]:
        return iter(list(self._states))

    def items(self) -> list[tuple[TP, PartitionState]]:
        """Every partition with its state."""
        return list(self._states.items())

    def get(self, tp: TP) -> PartitionState | None:
        """The state of ``tp``, if it is assigned."""
        return self._states.get(tp)

    def state(self, tp: TP) -> PartitionState:
        """The state of ``tp``, a fresh one if it had none."""
        return self._states.setdefault(tp, PartitionState())

    def reset(self, tp: TP) -> None:
        """Give ``tp`` a fresh state (after a rewind)."""
        self._states[tp] = PartitionState()

    def drop(self, tps: Iterable[TP]) -> None:
        """Forget ``tps``; their running records are cancelled and will be read again."""
        for tp in list(tps):
            state = self._states.pop(tp, None)
            if state is None:
                continue
            for task in state.running.values():
                task.cancel()
            state.running.clear()

    def ready(self) -> Ready:
        """The committable prefix of every partition."""
        return {tp: state.ready_prefix() for tp, state in self._states.items()}

    def forget(self, committed: Ready) -> None:
        """Drop what was committed; the oldest-finished clock restarts for the rest."""
        for tp, offsets in committed.items():
            state = self._states.get(tp)
            if state is None:
                continue
            for offset in offsets:
                state.order.popleft()
                del state.finished[offset]
            state.oldest_finished_at = time.monotonic() if state.finished else None

    def running(self) -> list[asyncio.Task[list[OutRecord]]]:
        """Every record being handled."""
        return [task for state in self._states.values() for task in state.running.values()]

    def queued(self) -> int:
        """Records fetched and not started yet."""
        return sum(len(state.queued) for state in self._states.values())

    def busy(self) -> bool:
        """Whether any record is queued, running, or finished and not committed."""
        return any(s.queued or s.running or s.finished for s in self._states.values())

    def oldest_finished_at(self) -> float | None:
        """When the oldest uncommitted finished record finished (monotonic), if any."""
        return min(
            (s.oldest_finished_at for s in self._states.values() if s.oldest_finished_at),
            default=None,
        )


__all__ = ["TP", "PartitionState", "Partitions", "Ready"]
