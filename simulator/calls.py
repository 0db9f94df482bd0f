"""A record of every request the fake servers answered, for test assertions."""

from __future__ import annotations

import dataclasses
import threading
import time


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    """One answered (or abandoned) request.

    ``target`` is ``wapi``, ``cdn`` or ``files``; ``media_id`` the CDN id when
    the request named a known media; ``outcome`` the fault decision
    (``ok``, ``error``, ``hang``...) or a rejection (``unauthorized``,
    ``unknown``, ``bad_request``); ``status`` the HTTP status sent (0 when the
    request was held open and never answered).
    """

    target: str
    media_id: str | None
    outcome: str
    status: int
    instance_id: str | None = None
    at: float = dataclasses.field(default_factory=time.time)


class CallLog:
    """Thread-safe, append-only list of :class:`Call`."""

    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._lock = threading.Lock()

    def record(self, call: Call) -> None:
        """Append one call."""
        with self._lock:
            self._calls.append(call)

    def all(self, target: str | None = None, media_id: str | None = None) -> list[Call]:
        """Return the calls so far, only those to ``target`` / about ``media_id`` if given."""
        with self._lock:
            calls = list(self._calls)
        return [
            c
            for c in calls
            if (target is None or c.target == target)
            and (media_id is None or c.media_id == media_id)
        ]

    def count(self, target: str | None = None, media_id: str | None = None) -> int:
        """How many calls match, see :meth:`all`."""
        return len(self.all(target, media_id))

    def statuses(self, target: str, media_id: str | None = None) -> list[int]:
        """Return the statuses sent to ``target`` (about ``media_id``), in order."""
        return [c.status for c in self.all(target, media_id)]

    def clear(self) -> None:
        """Forget every call (between phases of one test)."""
        with self._lock:
            self._calls.clear()


__all__ = ["Call", "CallLog"]
