"""``mediaflow diagnose`` checks each declared callback without sending it anything."""

from __future__ import annotations

from pathlib import Path

from mediaflow.config import Settings
from mediaflow.ops.diagnose import check_callbacks
from tests.support.notifier import SECRET


def settings_with(tmp_path: Path, registry: str) -> Settings:
    (tmp_path / "secret").write_text(SECRET)
    path = tmp_path / "tenants.toml"
    path.write_text(registry.replace("SECRET_FILE", str(tmp_path / "secret")))
    return Settings.from_env(
        {"MEDIAFLOW_TENANTS_FILE": str(path), "MEDIAFLOW_ALLOW_PRIVATE_ADDRESSES": "false"}
    )


def test_a_callback_on_a_private_address_without_allowance_fails_with_the_fix(
    tmp_path: Path,
) -> None:
    settings = settings_with(
        tmp_path,
        """
        [clients."2"]
        callback_url = "http://localhost:9/hooks"
        callback_secret_file = "SECRET_FILE"

        [clients."3"]
        callback_url = "http://localhost:9/hooks"
        callback_secret_file = "SECRET_FILE"
        callback_private = true
        """,
    )
    refused, allowed = check_callbacks(settings)
    assert (refused.name, refused.ok) == ("callback client '2'", False)
    assert "loopback" in refused.detail and "callback_private = true" in refused.hint
    assert (allowed.name, allowed.ok) == ("callback client '3'", True)


def test_an_invalid_declaration_is_one_failed_check(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, '[clients."2"]\ncallback_url = "https://p.example/h"\n')
    [check] = check_callbacks(settings)
    assert not check.ok and "without a secret" in check.detail
    assert SECRET not in check.line()


def test_no_callback_declared_is_no_check(tmp_path: Path) -> None:
    assert check_callbacks(settings_with(tmp_path, '[tenants.i1]\nclient_id = "2"\n')) == []
