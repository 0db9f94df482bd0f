"""One supervisor for every set of mediaflow child processes.

``mediaflow run all`` runs each role under it, and ``mediaflow serve webhooks
--workers N`` its N receivers; each child is a ``mediaflow`` command of its
own (:func:`mediaflow_command`). The supervisor:

* restarts a child that exits on its own, after a pause, so one crashing
  role (or worker) does not stop the rest;
* stops every child when one exits with
  :data:`~mediaflow.errors.EXIT_CONFIG`: the same configuration would be
  refused again, so it raises :class:`~mediaflow.errors.ConfigError` naming
  that child (whose own message, on stderr, says what to fix);
* on SIGTERM or SIGINT, stops: SIGTERM to every child (each drains and
  commits), SIGKILL to the ones still running after the grace period;
* on SIGHUP, passes it on to the children that reload their tenant registry
  with it (the webhook receivers); the others would die of it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from mediaflow.errors import EXIT_CONFIG, ConfigError
from mediaflow.logging import get_logger
from mediaflow.signals import STOP_SIGNALS, stop_on_signals

log = get_logger("mediaflow.supervisor")


def mediaflow_command(*args: str) -> tuple[str, ...]:
    """The command line of ``mediaflow <args>`` with this interpreter."""
    return (sys.executable, "-m", "mediaflow", *args)


@dataclass(frozen=True, slots=True)
class Child:
    """One process the supervisor keeps running.

    Attributes:
        name: what logs and errors call it (``detector``, ``webhooks-2``).
        argv: its command line.
        env: its whole environment.
        reloads: it reloads its configuration on SIGHUP, so SIGHUP is passed on.

    A child starts with SIGTERM and SIGINT blocked (SIGHUP too if it reloads)
    and unblocks them once its handlers are in place, as
    :func:`mediaflow.signals.stop_on_signals` does: a stop or reload sent while
    it starts is kept for it rather than ending it halfway.

    """

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)
    reloads: bool = False


@dataclass(eq=False)
class _Running:
    child: Child
    process: subprocess.Popen[bytes] | None = None
    restart_at: float | None = None


class Supervisor:
    """Keep ``children`` running until stopped; see the module docstring.

    Args:
        children: what to run.
        noun: what a child is, in the error of a refused configuration ("role", "worker").
        grace_s: how long the children get to stop after SIGTERM.
        restart_delay_s: the pause before restarting a child that exited.
        poll_s: how often the children are looked at.
        on_exit: called with the pid of each child that exited (on its own or
            at the stop), once the supervisor has seen it go.

    """

    def __init__(
        self,
        children: Sequence[Child],
        *,
        noun: str = "role",
        grace_s: float = 30.0,
        restart_delay_s: float = 2.0,
        poll_s: float = 0.2,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        self._running = [_Running(child) for child in children]
        self._noun = noun
        self._grace_s = grace_s
        self._restart_delay_s = restart_delay_s
        self._poll_s = poll_s
        self._on_exit = on_exit
        self._stopping = False
        self._reload_requested = False
        self.exit_codes: dict[str, int] = {}
        """Each child's exit code at the final stop."""

    def stop(self) -> None:
        """Stop every child and return from :meth:`run`. Called from signal handlers."""
        self._stopping = True

    def reload(self) -> None:
        """Pass SIGHUP on to the children that reload with it. Called from signal handlers."""
        self._reload_requested = True

    async def run(self) -> int:
        """Start every child and keep them running until :meth:`stop` or a refused configuration.

        Shutdown order: SIGTERM to every child at once (they drain in parallel),
        wait up to ``grace_s``, SIGKILL what is left.

        Returns:
            0 when every child exited 0 at the stop; 1 otherwise.

        Raises:
            ConfigError: a child exited with EXIT_CONFIG; every other child was stopped.

        """
        misconfigured: Child | None = None
        with stop_on_signals(self.stop, reload=self.reload):
            for entry in self._running:
                self._start(entry)
            while not self._stopping and misconfigured is None:
                await asyncio.sleep(self._poll_s)
                if self._reload_requested:
                    self._reload_requested = False
                    self._forward_reload()
                misconfigured = self._look_after()
            await self._stop_all()
        if misconfigured is not None:
            raise ConfigError(
                f"the {misconfigured.name} {self._noun} refused its configuration (its message "
                f"is above); every {self._noun} was stopped: fix the setting and start again"
            )
        return 0 if all(code == 0 for code in self.exit_codes.values()) else 1

    def _start(self, entry: _Running) -> None:
        # The child inherits these signals blocked: a stop (or reload) sent while it
        # starts waits for its handlers (stop_on_signals unblocks them) instead of
        # ending it halfway through its start.
        held = {*STOP_SIGNALS, signal.SIGHUP} if entry.child.reloads else set(STOP_SIGNALS)
        signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            entry.process = subprocess.Popen(entry.child.argv, env=dict(entry.child.env))
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, held)
        entry.restart_at = None

    def _exited(self, process: subprocess.Popen[bytes]) -> None:
        if self._on_exit is not None:
            self._on_exit(process.pid)

    def _look_after(self) -> Child | None:
        """Schedule the restart of children that exited; return one that refused its config."""
        now = time.monotonic()
        for entry in self._running:
            if entry.process is None:
                if entry.restart_at is not None and now >= entry.restart_at:
                    self._start(entry)
                continue
            code = entry.process.poll()
            if code is None:
                continue
            self._exited(entry.process)
            if code == EXIT_CONFIG:
                return entry.child
            log.error(
                "child_exited",
                child=entry.child.name,
                code=code,
                restart_in_s=self._restart_delay_s,
            )
            entry.process, entry.restart_at = None, now + self._restart_delay_s
        return None

    def _forward_reload(self) -> None:
        for entry in self._running:
            if entry.child.reloads and entry.process is not None and entry.process.poll() is None:
                entry.process.send_signal(signal.SIGHUP)

    async def _stop_all(self) -> None:
        alive = [e.process for e in self._running if e.process and e.process.poll() is None]
        for process in alive:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._grace_s
        while any(p.poll() is None for p in alive) and time.monotonic() < deadline:
            await asyncio.sleep(self._poll_s)
        for entry in self._running:
            if entry.process is None:
                continue
            if entry.process.poll() is None:
                log.error("child_killed", child=entry.child.name, grace_s=self._grace_s)
                entry.process.kill()
            self.exit_codes[entry.child.name] = entry.process.wait()
            self._exited(entry.process)


def supervise(
    children: Sequence[Child],
    *,
    noun: str = "role",
    on_exit: Callable[[int], None] | None = None,
) -> int:
    """Run a :class:`Supervisor` over ``children`` in the foreground; see :meth:`Supervisor.run`.

    Raises:
        ConfigError: a child refused its configuration.

    """
    return asyncio.run(Supervisor(children, noun=noun, on_exit=on_exit).run())


__all__ = ["Child", "Supervisor", "mediaflow_command", "supervise"]
