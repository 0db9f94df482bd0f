"""The retry policy: a pure decision, unit-tested without Kafka.

Given the attempt that just failed and its error, :meth:`RetryPolicy.decide`
answers "retry in tier N, due at T" or "dead-letter with kind K". Tiers are
topics with a fixed delay (declared in ``deploy/topics.toml``); a record
waits in its tier until its due time, so tiers never block each other.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mediaflow.errors import ErrorKind, MediaflowError, PermanentError, TransientError


@dataclass(frozen=True, slots=True)
class RetryTier:
    """A retry topic and how long records wait in it."""

    topic: str
    delay_s: float


@dataclass(frozen=True, slots=True)
class RetryLater:
    """Send the record to ``tier``; process it again at ``due_at`` as attempt ``attempt``."""

    tier: RetryTier
    due_at: datetime
    attempt: int
    error: MediaflowError


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Give up: dead-letter the record with ``kind``."""

    kind: ErrorKind
    message: str
    attempt: int
    error: MediaflowError


Decision = RetryLater | DeadLetter


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Where a failed record goes next.

    Attributes:
        tiers: retry tiers in order; attempt N (1-based) that fails goes to tier N.
        jitter: up to this fraction is added to each delay, so retries of a
            burst of failures do not all land at once.
        never_retry: transient kinds that are dead-lettered at once anyway.

    """

    tiers: tuple[RetryTier, ...] = ()
    jitter: float = 0.1
    never_retry: frozenset[ErrorKind] = field(default_factory=frozenset)

    @property
    def max_attempts(self) -> int:
        """Attempts a record gets in all: the first one plus one per tier."""
        return len(self.tiers) + 1

    def decide(
        self,
        attempt: int,
        error: MediaflowError,
        now: datetime,
        rng: random.Random | None = None,
    ) -> Decision:
        """Decide what happens after ``attempt`` failed with ``error``.

        Args:
            attempt: the 1-based number of the attempt that failed.
            error: why it failed; its branch of the error tree decides.
            now: the current time (injected: the policy reads no clock).
            rng: source of jitter; ``random`` module default when omitted.

        """
        if isinstance(error, PermanentError) or not isinstance(error, TransientError):
            return DeadLetter(error.kind, error.message, attempt, error)
        if error.kind in self.never_retry:
            return DeadLetter(error.kind, error.message, attempt, error)
        if attempt > len(self.tiers):
            message = (
                f"gave up after {attempt} attempts; last error ({error.kind}): {error.message}"
            )
            return DeadLetter(ErrorKind.RETRIES_EXHAUSTED, message, attempt, error)
        tier = self.tiers[attempt - 1]
        delay = max(tier.delay_s, error.retry_after or 0.0)
        delay *= 1 + (rng or random).uniform(0, self.jitter)
        return RetryLater(tier, now + timedelta(seconds=delay), attempt + 1, error)


__all__ = ["Decision", "DeadLetter", "RetryLater", "RetryPolicy", "RetryTier"]
