"""Signals, handled one way by every long-running mediaflow process.

SIGTERM and SIGINT only ask the running loop to stop (its ``stop()``): the
loop then finishes, commits and closes in its own documented order, never
inside a signal handler. SIGHUP, where a process takes it, reloads the
tenant registry (the webhook receiver) or passes it on (the supervisor).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
"""The signals that stop a mediaflow process gracefully."""


@contextmanager
def stop_on_signals(
    stop: Callable[[], None], *, reload: Callable[[], None] | None = None
) -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT call ``stop`` (and SIGHUP ``reload``).

    The handlers run on the running event loop (``loop.add_signal_handler``),
    between its callbacks, not in the middle of one. They are removed when the
    block ends: after a block that a signal ended, further stop signals are
    ignored (the process is on its way out; SIGKILL ends a stop that hangs);
    after one ended otherwise, a signal takes its default action.
    They are unblocked on entry, for a process started with them blocked (by
    :mod:`mediaflow.supervisor`), so one sent during its start comes now.

    Args:
        stop: asks the loop to finish (``Worker.stop``, ``asyncio.Event.set``).
        reload: what SIGHUP does; without it SIGHUP keeps its default action.

    """
    loop = asyncio.get_running_loop()
    stopped_by_signal = False

    def on_stop() -> None:
        nonlocal stopped_by_signal
        stopped_by_signal = True
        stop()

    handlers: dict[signal.Signals, Callable[[], None]] = dict.fromkeys(STOP_SIGNALS, on_stop)
    if reload is not None:
        handlers[signal.SIGHUP] = reload
    for signum, handler in handlers.items():
        loop.add_signal_handler(signum, handler)
    # A supervisor starts its children with these blocked (one sent while a child
    # starts would otherwise end it halfway); one that came meanwhile runs now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, handlers)
    try:
        yield
    finally:
        for signum in handlers:
            loop.remove_signal_handler(signum)
        if stopped_by_signal:
            # Stopping already: a terminal's Ctrl-C or systemd's stop reaches every
            # process of the group, and the supervisor then sends its own SIGTERM,
            # which must not cut the drain after this block short.
            for signum in STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)


__all__ = ["STOP_SIGNALS", "stop_on_signals"]
