"""Capped exponential backoff, for waiting on a dependency that is away (S3, the broker)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """``initial_s``, then twice as long after each failed try, never more than ``max_s``."""

    initial_s: float = 0.5
    max_s: float = 30.0

    def delay(self, waits: int) -> float:
        """Seconds to wait before try number ``waits + 1``."""
        return min(self.max_s, self.initial_s * 2 ** max(0, waits))


__all__ = ["Backoff"]
