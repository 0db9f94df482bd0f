import io
import json
import resource
import sys
from collections.abc import Iterator

import pytest

from mediaflow import logging as mflog
from mediaflow.serving import raise_open_files_limit


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    mflog.configure(fmt="json", level="info", stream=stream)
    try:
        yield stream
    finally:
        mflog.configure(fmt="json", level="warning", stream=sys.__stderr__)


@pytest.fixture
def open_files_limit() -> Iterator[tuple[int, int]]:
    """This process's limit, put back after the test."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, limit)


def test_a_soft_open_files_limit_below_the_hard_one_is_raised_to_it(
    open_files_limit: tuple[int, int], log_lines: io.StringIO
) -> None:
    _soft, hard = open_files_limit
    if hard == resource.RLIM_INFINITY or hard < 512:
        pytest.skip(f"needs a finite hard limit of at least 512 (this one: {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    assert raise_open_files_limit() == hard

    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    (line,) = [json.loads(text) for text in log_lines.getvalue().splitlines()]
    assert (line["event"], line["before"], line["after"]) == ("open_files_limit_raised", 256, hard)


def test_a_soft_limit_already_at_the_hard_one_is_left_without_a_word(
    open_files_limit: tuple[int, int], log_lines: io.StringIO
) -> None:
    _soft, hard = open_files_limit
    if hard == resource.RLIM_INFINITY:
        pytest.skip("needs a finite hard limit")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    assert raise_open_files_limit() == hard

    assert log_lines.getvalue() == ""
