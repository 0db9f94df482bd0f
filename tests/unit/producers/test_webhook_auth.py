import pytest
from multidict import CIMultiDict

from mediaflow.config import Secret
from mediaflow.events import Provider
from mediaflow.tenants import Tenant, TenantRegistry
from producers.webhook.auth import authenticate, presented_token
from producers.webhook.validation import Rejected

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
