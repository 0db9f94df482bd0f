"""API tokens declared in the tenant registry: by reference, scoped, each one distinct."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaflow.config import Secret
from mediaflow.errors import ConfigError
from mediaflow.logging import scrub
from mediaflow.processors.projection.tokens import ApiTokens, Scope, TokenSource

ADMIN = Secret("admin-token-0123456789")
LONG = "0123456789abcdefXYZ"


def load(tmp_path: Path, text: str, **environ: str) -> ApiTokens:
    path = tmp_path / "tenants.toml"
    path.write_text(text)
    return ApiTokens.load(path, admin=ADMIN, environ=environ)


def test_tokens_by_variable_and_by_file_get_their_scopes(tmp_path: Path) -> None:
    (tmp_path / "ops-token").write_text(f"ops-{LONG}\n")
    tokens = load(
        tmp_path,
        f"""
        [tenants.i1]
        client_id = "2"
        webhook_secret_env = "NOT_NEEDED_BY_THE_API"

        [api_tokens.acme]
        client_id = "2"
        token_env = "ACME"

        [api_tokens.ops]
        admin = true
        token_file = "{tmp_path / "ops-token"}"
        """,
        ACME=f"acme-{LONG}",
    )
    assert tokens.scope_of(f"acme-{LONG}".encode()) == Scope("acme", "2")
    assert tokens.scope_of(f"ops-{LONG}".encode()) == Scope("ops", None)
    assert tokens.scope_of(ADMIN.reveal().encode()) == Scope("MEDIAFLOW_API_TOKEN", None)
    assert tokens.scope_of(b"acme-") is None
    assert tokens.scope_of(b"") is None


def test_a_registry_without_api_tokens_leaves_only_the_admin(tmp_path: Path) -> None:
    tokens = load(tmp_path, "[tenants.i1]\nclient_id = '2'\n")
    assert [scope for _, scope in tokens.digests] == [Scope("MEDIAFLOW_API_TOKEN")]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[api_tokens.a]\nclient_id = '2'\ntoken = 'x'\n", "not in the registry itself"),
        ("[api_tokens.a]\nclient_id = '2'\ntoken_env = 'UNSET'\n", "UNSET, which is not set"),
        ("[api_tokens.a]\nclient_id = '2'\n", "shorter than 16 characters"),
        ("[api_tokens.a]\nclient_id = '2'\ntoken_env = 'SHORT'\n", "shorter than 16"),
        ("[api_tokens.a]\ntoken_env = 'GOOD'\n", "exactly one of client_id"),
        ("[api_tokens.a]\nadmin = true\nclient_id = '2'\ntoken_env = 'GOOD'\n", "exactly one"),
        ("[api_tokens.a]\nadmin = 'yes'\ntoken_env = 'GOOD'\n", "admin must be true or false"),
        ("[api_tokens.a]\nclientid = '2'\ntoken_env = 'GOOD'\n", "unknown key(s) clientid"),
        ("api_tokens = 3\n", "api_tokens must be a table"),
        ("[api_tokens]\na = 'x'\n", "must be a table"),
        (
            "[api_tokens.a]\nclient_id = '2'\ntoken_env = 'GOOD'\n"
            "[api_tokens.b]\nclient_id = '3'\ntoken_env = 'GOOD'\n",
            "'b' has the same value as 'a'",
        ),
        (
            "[api_tokens.a]\nclient_id = '2'\ntoken_env = 'ADMIN'\n",
            "same value as 'MEDIAFLOW_API_TOKEN'",
        ),
    ],
)
def test_a_bad_declaration_is_refused_with_what_to_fix(
    tmp_path: Path, text: str, says: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, text, SHORT="s3kr1t", GOOD=LONG, ADMIN=ADMIN.reveal())
    assert says in refused.value.message
    for secret in (LONG, "s3kr1t", ADMIN.reveal()):
        assert secret not in refused.value.message


def test_loaded_tokens_never_show_in_logs(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text("[api_tokens.a]\nclient_id = '2'\ntoken_env = 'A'\n")
    TokenSource(lambda: ApiTokens.load(path, admin=ADMIN, environ={"A": f"a-{LONG}"}))
    assert f"a-{LONG}" not in scrub(f"Authorization: Bearer a-{LONG}")
