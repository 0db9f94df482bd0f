"""Hand a :class:`Settings` to a child process through its environment.

``mediaflow run <role>`` reads its settings with ``Settings.from_env()``, so a
parent that built a :class:`Settings` in code (a test, the demo, a benchmark)
passes it on as ``MEDIAFLOW_*`` variables: :func:`settings_env` is the inverse
of ``from_env`` for everything but ``MEDIAFLOW_CONFIG_FILE``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mediaflow.config import (
    _FIELDS,
    _SECTIONS,
    _TOP,
    KAFKA_PROP_PREFIX,
    PREFIX,
    Secret,
    Settings,
    property_variable,
    variable_name,
)


def settings_env(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return an environment whose ``Settings.from_env()`` equals ``settings``.

    Args:
        settings: what the child must see.
        base: the environment to start from (``os.environ`` when omitted);
            its settings variables, Kafka properties and config file are
            dropped (they would point elsewhere); everything else (PATH, HOME,
            the ``MEDIAFLOW_DEMO_*`` secrets the tenants file names...) is kept.

    Secrets are revealed into the environment: that is the one place they go.
    """
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not _is_setting(k)}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if field.name in _SECTIONS:
            for sub in dataclasses.fields(value):
                if sub.name == "properties":
                    continue
                env[variable_name(field.name, sub.name)] = _text(getattr(value, sub.name))
        else:
            env[variable_name("", field.name)] = _text(value)
    for prop, value in settings.kafka.properties.items():
        env[property_variable(prop)] = value
    return env


def _is_setting(name: str) -> bool:
    if not name.startswith(PREFIX):
        return False
    short = name[len(PREFIX) :].lower()
    return (
        name.startswith(KAFKA_PROP_PREFIX)
        or short in _FIELDS
        or short in _TOP
        or (short == "config_file")
    )


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


__all__ = ["settings_env"]
