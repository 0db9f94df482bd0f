"""Run mediaflow roles and commands as subprocesses configured like the test's :class:`Settings`.

Usage::

    proc = spawn_role("detector", settings, "--idle-exit", "3")
    assert proc.wait(timeout=60) == 0
    ...
    stop(proc)  # SIGTERM, then SIGKILL if it does not exit in time

    done = run_mediaflow("topics", "check", env=settings_env(settings))
    assert done.returncode == 0, done.stderr
"""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from typing import IO

from mediaflow.config import REPO_ROOT, Settings
from mediaflow.process import settings_env


def spawn_role(
    role: str,
    settings: Settings,
    *extra_args: str,
    env: dict[str, str] | None = None,
    max_open_files: int | None = None,
    log: IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``mediaflow run <role> <extra_args>`` configured by ``settings``.

    Args:
        role: a role of ``mediaflow run`` (``detector``, ``downloader``...).
        settings: the settings the child reads from its environment.
        extra_args: more command-line arguments (``"--idle-exit", "3"``).
        env: extra variables that win over the ones derived from ``settings``.
        max_open_files: the child's open-files limit, soft and hard alike.
        log: a file for the child's stderr, where it logs; by default the
            test's own stderr (pytest shows it on failure).
    """
    child_env = settings_env(settings) | (env or {})

    def limit_open_files() -> None:  # runs in the child, between fork and exec
        limit = (max_open_files, max_open_files)
        resource.setrlimit(resource.RLIMIT_NOFILE, limit)

    return subprocess.Popen(
        [sys.executable, "-m", "mediaflow", "run", role, *extra_args],
        cwd=REPO_ROOT,
        env=child_env,
        preexec_fn=None if max_open_files is None else limit_open_files,
        stderr=log,
    )


def run_mediaflow(
    *argv: str, env: dict[str, str], timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run ``mediaflow <argv>`` to the end; return its exit code and captured output.

    Args:
        argv: the command line after ``mediaflow``.
        env: the child's whole environment (``settings_env(settings)``, plus changes).
        timeout: seconds before the test fails rather than waits on.
    """
    return subprocess.run(
        [sys.executable, "-m", "mediaflow", *argv],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM ``proc`` (it drains and commits), SIGKILL it after ``timeout``; return its code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode
