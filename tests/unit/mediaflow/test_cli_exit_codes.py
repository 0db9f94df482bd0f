"""A configuration error ends any command with exit code 78 (EX_CONFIG) and says what to fix."""

from pathlib import Path

import pytest

from mediaflow.cli import main
from mediaflow.errors import EXIT_CONFIG


def test_a_setting_out_of_range_stops_the_command_before_it_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEDIAFLOW_WEBHOOK_LINGER_MS", "-1")
    assert main(["serve", "webhooks"]) == EXIT_CONFIG
    assert capsys.readouterr().err == (
        "mediaflow: configuration error: MEDIAFLOW_WEBHOOK_LINGER_MS=-1 must be at least 0\n"
    )


def test_a_configuration_refused_while_starting_a_role_exits_78(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "tenants.toml"
    monkeypatch.setenv("MEDIAFLOW_TENANTS_FILE", str(missing))
    monkeypatch.setenv("MEDIAFLOW_LOG_LEVEL", "error")
    assert main(["serve", "webhooks"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.startswith(f"mediaflow serve: tenant registry {missing} does not exist")
