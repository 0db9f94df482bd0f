"""Where the tests find PostgreSQL: ``MEDIAFLOW_TEST_PG_URL``, and nowhere else.

``make test`` sets it to the PostgreSQL it started, so a PostgreSQL that is
missing there fails the run; ``make test-unit`` sets it empty, so the
PostgreSQL cases skip with the reason and no service is needed. Each test runs
pytest on the projection store's tests in a child process, as make would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
STORE_TESTS = "tests/unit/storage/test_projection_store.py"


def closed_port() -> int:
    """A loopback port nothing listens on (just released by this process)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_store_tests(pg_url: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MEDIAFLOW_TEST_PG_URL"}
    if pg_url is not None:
        env["MEDIAFLOW_TEST_PG_URL"] = pg_url
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", STORE_TESTS],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_an_empty_url_skips_the_postgres_cases_with_the_reason_and_passes() -> None:
    result = run_store_tests("")

    assert result.returncode == 0, result.stdout + result.stderr
    assert " skipped" in result.stdout
    assert "no PostgreSQL in this run" in result.stdout
    assert " failed" not in result.stdout


def test_an_unreachable_url_fails_the_postgres_cases_instead_of_skipping() -> None:
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/mediaflow"

    result = run_store_tests(url)

    assert result.returncode == 1, result.stdout + result.stderr
    assert " failed" in result.stdout
    assert " skipped" not in result.stdout
    assert f"PostgreSQL is not reachable at {url}" in result.stdout


def test_without_the_variable_the_postgres_cases_fail_and_say_how_to_run_them() -> None:
    result = run_store_tests(None)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "MEDIAFLOW_TEST_PG_URL is not set" in result.stdout
