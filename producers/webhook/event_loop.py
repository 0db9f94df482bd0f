"""The receiver's event loop: timers that fire less than a millisecond late.

While requests wait for the broker, the producer polls for delivery reports
every :data:`~mediaflow.producers.webhook.producer.POLL_INTERVAL_S` (0.2 ms). asyncio's
epoll selector rounds every wait up to whole milliseconds, epoll's unit, so a
loop with nothing else to do saw each acknowledgement up to a millisecond late:
most of a webhook's latency, when a local broker acknowledges in 0.16 ms. Here
a wait shorter than a millisecond first waits on the epoll descriptor itself
with ``select()``, whose timeout counts microseconds (an epoll descriptor is
readable while it has events), then collects the events without blocking.

kqueue (macOS, BSD) takes fractional timeouts as they are, so other platforms
keep asyncio's default loop.
"""

from __future__ import annotations

import asyncio
import select
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_SELECT_FD_LIMIT = 1024
"""``select()`` cannot watch a descriptor at or above ``FD_SETSIZE`` (1024 on Linux)."""


class PreciseEpollSelector(selectors.EpollSelector):
    """An epoll selector that honours timeouts shorter than a millisecond."""

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        """Wait for events, up to ``timeout`` seconds (``None``: until one comes)."""
        epoll_fd = self.fileno()
        if timeout is not None and 0 < timeout < 1e-3 and epoll_fd < _SELECT_FD_LIMIT:
            # Under load events are usually waiting already: collect them in one
            # call, and pay for the wait only when there is none.
            ready = super().select(0)
            if ready:
                return ready
            select.select([epoll_fd], [], [], timeout)
            timeout = 0
        return super().select(timeout)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """Return an event loop with :class:`PreciseEpollSelector` where epoll is the selector."""
    if hasattr(selectors, "EpollSelector"):
        return asyncio.SelectorEventLoop(PreciseEpollSelector())
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a loop from :func:`new_event_loop` (``asyncio.run``)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)


__all__ = ["PreciseEpollSelector", "new_event_loop", "run"]
