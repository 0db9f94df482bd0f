"""One signal stops a process; the copies that follow it (Ctrl-C to the whole group, then
the supervisor's SIGTERM) must not cut its shutdown short."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap

from mediaflow.config import REPO_ROOT
from mediaflow.signals import stop_on_signals

# A process that stops on its first SIGTERM, then takes 0.5 s to shut down; a second
# SIGTERM arrives during that shutdown, as the supervisor's does after Ctrl-C.
CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys, time
    from mediaflow.signals import stop_on_signals

    async def main():
        stop = asyncio.Event()
        with stop_on_signals(stop.set):
            print("ready", flush=True)
            await stop.wait()
        os.kill(os.getpid(), signal.SIGTERM)  # the second copy, during the shutdown
        time.sleep(0.5)
        print("shut down", flush=True)

    asyncio.run(main())
    """
)


def test_a_second_stop_signal_during_the_shutdown_does_not_end_it() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "ready\n"
    child.send_signal(signal.SIGTERM)
    out, _ = child.communicate(timeout=30)
    assert (child.returncode, out) == (0, "shut down\n")  # was -15, killed mid-shutdown


def test_a_block_left_without_a_signal_leaves_the_default_actions() -> None:
    async def scenario() -> None:
        with stop_on_signals(lambda: None):
            pass

    asyncio.run(scenario())
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
