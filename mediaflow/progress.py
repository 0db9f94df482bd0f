"""Progress of long work (scans, redrives, a projection rebuild), drawn on a terminal.

The line goes to stderr and only when it is a terminal, so pipes and logs
stay clean. Operator commands and the projection rebuild share it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Progress:
    """A progress line on stderr, rewritten in place at most 5 times a second.

    ``scanned 1,200 (800/s)`` for a count without an end; with a ``total``, a
    bar and an ETA: ``rebuild [#####     ] 500/2,000 events  250/s  ETA 6s``.
    Drawn only when the stream is a terminal, so pipes and logs stay clean.

    Example::

        progress = Progress("redriven", total=len(items))
        for item in items:
            ...
            progress.advance()
        progress.close()
    """

    label: str
    total: int | None = None
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    unit: str = ""
    clock: Callable[[], float] = time.monotonic
    done: int = 0
    _started: float = field(init=False)
    _shown: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._started = self.clock()

    @property
    def enabled(self) -> bool:
        """Whether anyone is watching (a terminal)."""
        return self.stream.isatty()

    def advance(self, count: int = 1) -> None:
        """Count ``count`` more items and redraw if due."""
        self.update(self.done + count)

    def update(self, done: int) -> None:
        """Set the count (items done so far, e.g. summed over processes) and redraw if due."""
        self.done = done
        now = self.clock()
        if self.enabled and (self._shown is None or now - self._shown >= 0.2):
            self._shown = now
            self.stream.write("\r" + self.line(now - self._started))
            self.stream.flush()

    def line(self, elapsed: float, width: int = 30) -> str:
        """The progress text after ``elapsed`` seconds."""
        rate = self.done / elapsed if elapsed > 0 else 0.0
        unit = f" {self.unit}" if self.unit else ""
        if self.total is None:
            return f"{self.label} {self.done:,}{unit} ({rate:,.0f}/s)"
        fraction = min(1.0, self.done / self.total) if self.total else 1.0
        eta = f"{max(0, self.total - self.done) / rate:.0f}s" if rate > 0 else "?"
        bar = "#" * int(fraction * width)
        return (
            f"{self.label} [{bar:<{width}}] {self.done:,}/{self.total:,}{unit}  "
            f"{rate:,.0f}/s  ETA {eta}"
        )

    def close(self, *, keep: bool = False) -> None:
        """End the progress line: leave its final state (``keep``) or erase it."""
        if not self.enabled or self._shown is None:
            return
        if keep:
            self.stream.write("\r" + self.line(self.clock() - self._started) + "\n")
        else:
            self.stream.write("\r\x1b[K")
        self.stream.flush()


__all__ = ["Progress"]
