"""The tenant registry refuses a file it cannot use with a message that says what is wrong."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mediaflow.errors import ConfigError
from mediaflow.producers.webhook.auth import TenantSource
from mediaflow.tenants import TenantRegistry

BROKEN = {
    "not UTF-8": (b"\xff\xfe client_id", "is not UTF-8 text (bad byte at 0); save it as UTF-8"),
    "tenants not a table": (b"tenants = 5", "tenants must be a table of instances"),
    "a tenant not a table": (b"[tenants]\nX1 = 1", "tenant 'X1' in {path} must be a table"),
    "unknown provider": (
        b'[tenants.X1]\nclient_id = "1"\nprovider = "wappi"',
        "tenant 'X1': provider 'wappi' is not one of wapi, evolution, zapi",
    ),
    "fetch_order not a list": (
        b'[tenants.X1]\nclient_id = "1"\nfetch_order = "direct"',
        "tenant 'X1': fetch_order must be a list",
    ),
}


@pytest.mark.parametrize("content, message", BROKEN.values(), ids=BROKEN.keys())
def test_a_registry_it_cannot_use_is_a_config_error_that_says_why(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "tenants.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as refused:
        TenantRegistry.load(path, environ={})
    assert message.format(path=path) in refused.value.message


def test_a_directory_in_place_of_the_registry_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read: Is a directory"):
        TenantRegistry.load(tmp_path, environ={})


def test_the_receiver_warns_once_per_tenant_it_can_never_authenticate(
    tmp_path: Path, log_lines: io.StringIO
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t")
    path = tmp_path / "tenants.toml"
    path.write_text(
        f'[tenants.WITH]\nclient_id = "1"\nwebhook_secret_file = "{secret}"\n'
        '[tenants.WITHOUT]\nclient_id = "2"\n'
    )
    TenantSource(path)
    warnings = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert [(w["event"], w["instance_id"]) for w in warnings] == [
        ("tenant_without_webhook_secret", "WITHOUT")
    ]


def test_a_reload_that_finds_an_unreadable_file_keeps_the_registry_in_use(
    tmp_path: Path, log_lines: io.StringIO
) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.X1]\nclient_id = "1"\n')
    source = TenantSource(path)
    path.write_bytes(b"\xff\xfe not text")

    assert source.reload() is False

    assert source.registry.get("X1") is not None
    failures = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert failures[-1]["event"] == "tenants_reload_failed"
    assert "is not UTF-8 text" in failures[-1]["reason"]
