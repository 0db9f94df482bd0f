"""Fixtures shared by the unit tests of the shared core."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator

import pytest

from mediaflow import logging as mflog


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The JSON log lines (level info and up) written during the test."""
    stream = io.StringIO()
    mflog.configure(fmt="json", level="info", stream=stream)
    try:
        yield stream
    finally:
        mflog.configure(fmt="json", level="warning", stream=sys.__stderr__)
