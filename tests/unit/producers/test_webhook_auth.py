from pathlib import Path

import pytest
from multidict import CIMultiDict

from mediaflow.config import Secret
from mediaflow.events import Provider
from mediaflow.producers.webhook.auth import (
    KnownSecrets,
    TenantSource,
    authenticate,
    presented_token,
)
from mediaflow.producers.webhook.validation import Rejected
from mediaflow.tenants import Tenant, TenantRegistry

REGISTRY = TenantRegistry(
    {
        "W1": Tenant("W1", "2", "wapi", Secret("wapi-secret"), Secret("")),
        "E1": Tenant("E1", "3", "evolution", Secret("evo-secret"), Secret("")),
        "N1": Tenant("N1", "4", "wapi", Secret(""), Secret("")),
    }
)


def test_the_query_token_wins_over_headers() -> None:
    headers = CIMultiDict({"X-Webhook-Token": "h"})
    assert presented_token(Provider.WAPI, {"token": "q"}, headers) == "q"


def test_the_header_token_is_read_case_insensitively() -> None:
    assert presented_token(Provider.WAPI, {}, CIMultiDict({"x-webhook-token": "h"})) == "h"


def test_evolution_accepts_the_apikey_header_and_wapi_does_not() -> None:
    headers = CIMultiDict({"apikey": "k"})
    assert presented_token(Provider.EVOLUTION, {}, headers) == "k"
    assert presented_token(Provider.WAPI, {}, headers) is None


def test_the_right_secret_returns_the_tenant() -> None:
    assert authenticate(REGISTRY, Provider.WAPI, "W1", "wapi-secret").client_id == "2"


@pytest.mark.parametrize(
    ("provider", "instance", "token"),
    [
        (Provider.WAPI, "W1", "wrong"),
        (Provider.WAPI, "W1", None),
        (Provider.WAPI, "UNKNOWN", "wapi-secret"),
        (Provider.WAPI, "E1", "evo-secret"),
        (Provider.WAPI, "N1", ""),
    ],
)
def test_every_failure_is_the_same_401(
    provider: Provider, instance: str, token: str | None
) -> None:
    with pytest.raises(Rejected) as caught:
        authenticate(REGISTRY, provider, instance, token)
    assert (caught.value.status, caught.value.message) == (401, "unknown instance or wrong token")


@pytest.mark.parametrize("token", ["\udcff", "wapi-secret\udcff", "\ud800"])
def test_a_token_that_is_not_utf8_is_the_same_401(token: str) -> None:
    # aiohttp hands header bytes that are not UTF-8 over as lone surrogates.
    for instance in ("W1", "UNKNOWN"):
        with pytest.raises(Rejected) as caught:
            authenticate(REGISTRY, Provider.WAPI, instance, token)
        assert caught.value.status == 401
    assert not KnownSecrets.of(REGISTRY).admits(Provider.WAPI, token)


def test_a_secret_is_known_at_the_endpoint_of_its_tenants_provider_only() -> None:
    known = KnownSecrets.of(REGISTRY)
    assert known.admits(Provider.WAPI, "wapi-secret")
    assert known.admits(Provider.EVOLUTION, "evo-secret")
    assert not known.admits(Provider.EVOLUTION, "wapi-secret")
    assert not known.admits(Provider.ZAPI, "wapi-secret")


@pytest.mark.parametrize("token", [None, "", "wrong", "wapi-secre", "wapi-secret "])
def test_no_token_or_one_no_tenant_has_is_not_known(token: str | None) -> None:
    # The tenant without a secret ("N1") does not make an empty token known.
    assert not KnownSecrets.of(REGISTRY).admits(Provider.WAPI, token)


def test_a_reload_changes_which_secrets_are_known(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("first")
    path = tmp_path / "tenants.toml"
    path.write_text(f'[tenants.W1]\nclient_id = "1"\nwebhook_secret_file = "{secret}"\n')
    source = TenantSource(path)
    secret.write_text("second")

    assert source.reload()

    assert source.known.admits(Provider.WAPI, "second")
    assert not source.known.admits(Provider.WAPI, "first")
