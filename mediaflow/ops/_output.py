"""How operator commands talk to people and to scripts.

Tables on stdout by default, one JSON document with ``--json``; progress of
long scans on stderr (only when stderr is a terminal, so pipes and logs stay
clean).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

CLEAR_HOME = "\x1b[H\x1b[2J"
"""ANSI: cursor home, clear screen (``status --watch`` redraws like ``top``)."""


def cell(value: Any) -> str:
    """Render one table cell: times as ISO seconds, ``None`` as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, max_width: int = 60) -> str:
    """Render ``rows`` as a left-aligned text table with a header line.

    Args:
        rows: one mapping per row; missing keys render as ``-``.
        columns: the keys to show, in order (also the header).
        max_width: longer cells are cut and end with ``…``.
    """
    cells = [[_cut(cell(row.get(c)), max_width) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def to_json(data: Any) -> str:
    """Serialise command output (datetimes as ISO, bytes as hex)."""
    return json.dumps(data, indent=2, default=_default, ensure_ascii=False)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "__dataclass_fields__"):
        return {k: getattr(value, k) for k in value.__dataclass_fields__}
    return str(value)


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


__all__ = ["CLEAR_HOME", "Progress", "cell", "table", "to_json"]
