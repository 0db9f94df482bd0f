"""Waiting for what happens asynchronously: a broker applying a change, a server starting."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(probe: Callable[[], T], timeout: float = 10.0, interval: float = 0.2) -> T:
    """Call ``probe`` until it returns something truthy or ``timeout`` passes; return its result."""
    deadline = time.monotonic() + timeout
    while not (result := probe()) and time.monotonic() < deadline:
        time.sleep(interval)
    return result
