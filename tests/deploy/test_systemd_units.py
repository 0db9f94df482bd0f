"""The systemd units in ``deploy/systemd`` run every role the way a plain host should.

Each role has a unit whose command the CLI accepts; a refused configuration
(exit 78) is not restarted in a loop; the transactional stages are template
units whose instance gives each copy a stable name; the settings file parses
and keeps private addresses refused. ``systemd-analyze verify`` checks the
units' syntax where systemd is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from mediaflow.cli import build_parser
from mediaflow.config import Settings
from tests.support.deploy import DEPLOY, PIPELINE_ROLES, TRANSACTIONAL_ROLES, read_env_file

UNITS = DEPLOY / "systemd"
BINARY = "/opt/mediaflow/venv/bin/mediaflow"
SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD")

Unit = dict[str, dict[str, list[str]]]


def read_unit(path: Path) -> Unit:
    """Section -> key -> values (systemd keys such as ExecStart may repeat)."""
    unit: Unit = defaultdict(lambda: defaultdict(list))
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        else:
            key, _, value = line.partition("=")
            unit[section][key].append(value)
    return unit


def unit_file(role: str) -> Path:
    template = "@" if role in TRANSACTIONAL_ROLES else ""
    return UNITS / f"mediaflow-{role}{template}.service"


def command(unit: Unit) -> list[str]:
    [exec_start] = unit["Service"]["ExecStart"]
    binary, *args = exec_start.split()
    assert binary == BINARY
    return args


@pytest.mark.parametrize("role", PIPELINE_ROLES)
def test_every_role_has_a_unit_running_it(role: str) -> None:
    unit = read_unit(unit_file(role))

    assert build_parser().parse_args(command(unit)).role == role


@pytest.mark.parametrize("role", PIPELINE_ROLES)
def test_a_refused_configuration_is_not_restarted_but_a_crash_is(role: str) -> None:
    service = read_unit(unit_file(role))["Service"]

    assert service["Restart"] == ["on-failure"]
    assert service["RestartPreventExitStatus"] == ["78"]


@pytest.mark.parametrize("role", PIPELINE_ROLES)
def test_every_role_reads_settings_and_secrets_and_waits_for_set_up(role: str) -> None:
    unit = read_unit(unit_file(role))

    assert unit["Service"]["EnvironmentFile"] == [
        "/etc/mediaflow/mediaflow.env",
        "/etc/mediaflow/secrets.env",
    ]
    assert "mediaflow-setup.service" in unit["Unit"]["Requires"][0].split()
    assert "mediaflow-setup.service" in unit["Unit"]["After"][0].split()
    assert unit["Service"]["User"] == ["mediaflow"]


@pytest.mark.parametrize("role", TRANSACTIONAL_ROLES)
def test_each_copy_of_a_transactional_stage_has_a_stable_name_of_its_own(role: str) -> None:
    service = read_unit(unit_file(role))["Service"]
    environment = dict(e.split("=", 1) for e in service["Environment"])

    # %i: the copy's instance (its metrics port), %H: the host, both stable.
    assert "%i" in environment["MEDIAFLOW_INSTANCE_NAME"]
    assert "%H" in environment["MEDIAFLOW_INSTANCE_NAME"]
    assert environment["MEDIAFLOW_METRICS_PORT"] == "%i"


def test_the_set_up_unit_applies_topics_then_creates_the_bucket() -> None:
    service = read_unit(UNITS / "mediaflow-setup.service")["Service"]

    assert service["Type"] == ["oneshot"]
    assert [e.split()[1:] for e in service["ExecStart"]] == [
        ["topics", "apply"],
        ["storage", "init"],
    ]


def test_the_settings_file_parses_refuses_private_addresses_and_holds_no_secret() -> None:
    env = read_env_file(UNITS / "mediaflow.env")

    settings = Settings.from_env(env)

    assert settings.downloader.allow_private_addresses is False
    assert settings.s3.endpoint_url is None  # AWS
    assert not [name for name in env if any(word in name for word in SECRET_WORDS)]
    assert "MEDIAFLOW_INSTANCE_NAME" not in env
    assert "MEDIAFLOW_METRICS_PORT" not in env


def test_the_secrets_example_holds_placeholders_only() -> None:
    env = read_env_file(UNITS / "secrets.env.example")

    assert env
    assert all(value.startswith("REPLACE-ME") for value in env.values())


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify checks that ExecStart's binary exists: point it at one that does.
    for path in [*UNITS.glob("*.service"), *UNITS.glob("*.target")]:
        text = path.read_text().replace(BINARY, shutil.which("true") or "/bin/true")
        (tmp_path / path.name).write_text(text)
        if path.name.endswith("@.service"):
            (tmp_path / path.name.replace("@", "@9101")).write_text(text)
    units = sorted(str(p) for p in tmp_path.iterdir() if "@." not in p.name)

    result = subprocess.run(
        [analyze, "verify", "--man=no", *units], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
