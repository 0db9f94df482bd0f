"""The retry policy: a pure decision, unit-tested without Kafka.

Given the attempt that just failed and its error, :meth:`RetryPolicy.decide`
answers "retry in tier N, due at T" or "dead-letter with kind K". Tiers are
topics with a fixed delay (declared in ``deploy/topics.toml``); a record
waits in its tier until its due time, so tiers never block each other.

Within a tier partition the worker only looks at the head record's due time,
so the policy keeps one invariant: **a record is due no later than its tier's
delay after it was routed** (``due_at <= now + tier.delay_s``). Records are
appended in routing order, so the head is never due later than the tier
delay after any record behind it was written: no record waits in a tier
longer than that tier's delay because of the record before it (give or take
the commit interval between routing and writing). To keep it:

* the tier is the later of the attempt's own tier and the shortest tier at
  least as long as the server's ``Retry-After``; a ``Retry-After`` longer
  than every tier is capped at the longest one;
* the due time is the tier's delay, shortened (never lengthened) by up to
  ``jitter`` of it, and never earlier than the ``Retry-After``.
"""

from __future__ import annotations

import math
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
        tiers: retry tiers in order; attempt N (1-based) that fails goes to tier N,
            or to a later tier when the server asked to wait longer.
        jitter: up to this fraction of each delay is taken off it, so retries
            of a burst of failures do not all land at once.
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
        asked = _requested_wait(error.retry_after)
        tier = self._tier(attempt, asked)
        delay = tier.delay_s * (1 - (rng or random).uniform(0, self.jitter))
        delay = max(delay, min(asked, tier.delay_s), 0.0)
        return RetryLater(tier, now + timedelta(seconds=delay), attempt + 1, error)

    def _tier(self, attempt: int, asked: float) -> RetryTier:
        """The later of the attempt's tier and the shortest tier lasting ``asked`` seconds."""
        later = self.tiers[attempt - 1 :]
        if asked <= later[0].delay_s:
            return later[0]
        long_enough = [t for t in later if t.delay_s >= asked]
        return long_enough[0] if long_enough else max(later, key=lambda t: t.delay_s)


def _requested_wait(retry_after: float | None) -> float:
    """Seconds the server asked for; 0 for none, NaN or negative; ``inf`` stays (capped later)."""
    if retry_after is None or math.isnan(retry_after) or retry_after <= 0:
        return 0.0
    return retry_after


__all__ = ["Decision", "DeadLetter", "RetryLater", "RetryPolicy", "RetryTier"]
