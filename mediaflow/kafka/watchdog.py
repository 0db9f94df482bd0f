"""A deadline on librdkafka's blocking calls, which can ignore their own timeouts.

librdkafka can wait forever inside a transaction call when the group
coordinator goes away; such a call cannot be interrupted from Python. The
watchdog notices from a timer thread and, by default, ends the process so its
supervisor starts a fresh one (:func:`exit_wedged`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mediaflow.logging import get_logger

log = get_logger("mediaflow.worker")

EXIT_WEDGED = 70
"""Exit status of a process whose librdkafka call wedged (EX_SOFTWARE)."""


def exit_wedged(call: str) -> None:
    """Exit the process at once: a wedged librdkafka call cannot be interrupted.

    Exactly-once still holds: nothing of the open transaction is visible to
    ``read_committed`` readers; the broker aborts it at ``transaction.timeout.ms``
    or the restarted copy (same ``transactional.id``) fences and aborts it, and
    the input is read again from the committed offsets.
    """
    log.critical(
        "kafka_call_wedged",
        call=call,
        hint="exiting so the supervisor restarts this copy; no committed work is lost",
    )
    os._exit(EXIT_WEDGED)


class Watchdog:
    """Calls ``on_wedged(call)`` when a guarded block outlives its deadline.

    A call given its own timeout is wedged once it outlives that timeout by
    ``grace_s``: librdkafka returns by then unless it is stuck (for example in
    ``send_offsets_to_transaction`` after a broker restart, librdkafka issue
    #5456), and every second past it stalls the stage's partitions. A call
    without a timeout gets ``deadline_s``, which also caps every deadline.

    Args:
        deadline_s: the longest any guarded call may take.
        on_wedged: what to do then, from the timer thread; :func:`exit_wedged` by default.
        grace_s: how long past its own timeout a call may still return.

    """

    def __init__(
        self,
        deadline_s: float,
        on_wedged: Callable[[str], None] = exit_wedged,
        *,
        grace_s: float = 15.0,
    ) -> None:
        self._deadline_s = deadline_s
        self._on_wedged = on_wedged
        self._grace_s = grace_s

    @contextmanager
    def guard(self, call: str, timeout_s: float | None = None) -> Iterator[None]:
        """Watch the block, named ``call`` in the report, given the call's own timeout."""
        deadline = self._deadline_s
        if timeout_s is not None:
            deadline = min(deadline, timeout_s + self._grace_s)
        timer = threading.Timer(deadline, self._on_wedged, args=(call,))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()


__all__ = ["EXIT_WEDGED", "Watchdog", "exit_wedged"]
