"""Run mediaflow roles as real subprocesses configured like the test's :class:`Settings`.

Usage::

    proc = spawn_role("detector", settings, "--idle-exit", "3")
    assert proc.wait(timeout=60) == 0
    ...
    stop(proc)  # SIGTERM, then SIGKILL if it does not exit in time
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from mediaflow.config import _FIELDS, KAFKA_PROP_PREFIX, PREFIX, REPO_ROOT, Secret, Settings

_SECTIONS = ("kafka", "s3", "downloader")
_VARIABLE = {section_attr: name for name, section_attr in _FIELDS.items()}


def settings_env(settings: Settings) -> dict[str, str]:
    """Return an environment whose ``Settings.from_env()`` equals ``settings``.

    The test process's environment is kept (PATH, HOME...), minus every
    ``MEDIAFLOW_*`` variable, which would point elsewhere.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if field.name in _SECTIONS:
            for sub in dataclasses.fields(value):
                if sub.name == "properties":
                    continue
                name = _VARIABLE[(field.name, sub.name)]
                env[f"{PREFIX}{name.upper()}"] = _text(getattr(value, sub.name))
        else:
            env[f"{PREFIX}{field.name.upper()}"] = _text(value)
    for prop, value in settings.kafka.properties.items():
        env[f"{KAFKA_PROP_PREFIX}{prop.upper().replace('.', '_')}"] = value
    return env


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    if isinstance(value, Path):
        return str(value)
    return str(value)


def spawn_role(
    role: str,
    settings: Settings,
    *extra_args: str,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``mediaflow run <role> <extra_args>`` configured by ``settings``.

    Args:
        role: a role of ``mediaflow run`` (``detector``, ``downloader``...).
        settings: the settings the child reads from its environment.
        extra_args: more command-line arguments (``"--idle-exit", "3"``).
        env: extra variables that win over the ones derived from ``settings``.

    The child's output goes to the test's stdout/stderr (pytest shows it on failure).
    """
    child_env = settings_env(settings) | (env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "mediaflow", "run", role, *extra_args],
        cwd=REPO_ROOT,
        env=child_env,
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
