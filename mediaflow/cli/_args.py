"""Argument helpers shared by the operator commands."""

from __future__ import annotations

import argparse
import math
from typing import Any

from mediaflow.ops import dlq


def json_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--json``."""
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def positive_int(text: str) -> int:
    """Parse a whole number of at least 1 (argparse ``type=``)."""
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def positive_seconds(text: str) -> float:
    """Parse a finite number of seconds above 0 (argparse ``type=``)."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from exc
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds above 0")
    return value


def time_arg(text: str) -> Any:
    """Parse an ISO-8601 time or epoch milliseconds (argparse ``type=``)."""
    try:
        return dlq.parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is neither ISO-8601 nor epoch ms") from exc
