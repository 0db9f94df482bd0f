"""How operator commands talk to people and to scripts.

Tables on stdout by default, one JSON document with ``--json``; progress of
long scans is :class:`mediaflow.progress.Progress`, on stderr.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

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


__all__ = ["CLEAR_HOME", "cell", "table", "to_json"]
