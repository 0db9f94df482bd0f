"""How many bytes of webhook bodies one receiver process holds at once, and the most it may.

Each body stays in memory from its first byte read until Kafka has its record:
many slow or large bodies at once, or slow acknowledgements, add up. The size
limit bounds one body; :class:`BodyBudget` bounds them all together
(``MEDIAFLOW_WEBHOOK_BODY_BUDGET_BYTES``, per worker process). Bytes are
counted as they are read, decoded (a gzip body counts what it inflates to);
a request that would pass the budget gets 503 with ``Retry-After``, so its
sender retries once others have finished, and the requests already holding
their share go on.

Not thread-safe, by design: only the event loop's thread touches it.
"""

from __future__ import annotations

from types import TracebackType

from mediaflow.producers.webhook.validation import Rejected
from mediaflow.serving import RETRY_AFTER_S


def over_budget(capacity: int) -> Rejected:
    """Return the refusal of a body the budget cannot hold now (503, ``Retry-After``)."""
    return Rejected(
        503,
        "too_busy",
        f"the receiver holds as many request bodies as it may ({capacity} bytes); "
        f"retry in {RETRY_AFTER_S} s",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


class BodyBudget:
    """The bytes of bodies held now (:attr:`used`), out of :attr:`capacity`.

    Example::

        with budget.lease() as lease:
            lease.take(len(piece))  # 503 when past the capacity
            ...                     # everything given back here

    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0

    def lease(self) -> Lease:
        """Return a new, empty share for one request."""
        return Lease(self)


class Lease:
    """One request's share of a :class:`BodyBudget`, given back whole when it ends."""

    def __init__(self, budget: BodyBudget) -> None:
        self._budget = budget
        self.held = 0

    def take(self, size: int) -> None:
        """Hold ``size`` more bytes.

        Raises:
            Rejected: 503 when the budget cannot hold them now.

        """
        budget = self._budget
        if budget.used + size > budget.capacity:
            raise over_budget(budget.capacity)
        budget.used += size
        self.held += size

    def release(self) -> None:
        """Give back everything held."""
        self._budget.used -= self.held
        self.held = 0

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


__all__ = ["BodyBudget", "Lease", "over_budget"]
