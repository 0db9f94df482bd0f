"""Who may post a webhook: the per-instance secret, checked in constant time.

W-API signs nothing, so each instance's integrator shares a secret with us; the
provider sends it as the ``token`` query parameter or the ``X-Webhook-Token``
header (Evolution commonly sends it as ``apikey``). An unknown instance, an
instance of another provider and a wrong secret all get the same 401, and take
the same path through :func:`hmac.compare_digest`, so the answer reveals
nothing about which instances exist.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from pathlib import Path

from mediaflow.errors import ConfigError
from mediaflow.events import Provider
from mediaflow.logging import get_logger, register_secrets
from mediaflow.tenants import Tenant, TenantRegistry
from producers.webhook.validation import Rejected

log = get_logger("mediaflow.webhook")

TOKEN_QUERY = "token"
TOKEN_HEADERS = ("X-Webhook-Token",)
EXTRA_TOKEN_HEADERS: Mapping[Provider, tuple[str, ...]] = {Provider.EVOLUTION: ("apikey",)}
AUTH_HEADERS = frozenset({"authorization", "x-webhook-token", "apikey", "cookie"})
"""Request headers that carry credentials: never copied, never logged."""

_UNAUTHORIZED = "unknown instance or wrong token"
# Compared against when the instance is unknown, so both failures cost the same.
_DUMMY = b"\x00" * 32


def presented_token(
    provider: Provider, query: Mapping[str, str], headers: Mapping[str, str]
) -> str | None:
    """Return the secret the request presents, if any.

    Args:
        provider: the endpoint's provider (Evolution also accepts ``apikey``).
        query: the URL query parameters.
        headers: the request headers (case-insensitive mapping).

    """
    if query.get(TOKEN_QUERY):
        return query[TOKEN_QUERY]
    for name in TOKEN_HEADERS + EXTRA_TOKEN_HEADERS.get(provider, ()):
        if headers.get(name):
            return headers[name]
    return None


def authenticate(
    registry: TenantRegistry, provider: Provider, instance_id: str, presented: str | None
) -> Tenant:
    """Return the tenant of ``instance_id`` when ``presented`` is its secret.

    Args:
        registry: the current tenant registry.
        provider: the endpoint the request came to; the tenant must be of it.
        instance_id: the instance named in the body.
        presented: the secret the request carries.

    Raises:
        Rejected: 401, the same for every failure.

    """
    tenant = registry.get(instance_id)
    if tenant is None or tenant.provider != provider.value:
        hmac.compare_digest((presented or "").encode(), _DUMMY)
        raise Rejected(401, "unauthorized", _UNAUTHORIZED)
    if not tenant.accepts(presented):
        raise Rejected(401, "unauthorized", _UNAUTHORIZED)
    return tenant


class TenantSource:
    """The current tenant registry, swappable while requests are being served.

    Reads take :attr:`registry` once per request; :meth:`reload` replaces the
    reference in one assignment, so a request sees either the old or the new
    registry, never a mix, and none is dropped.
    """

    def __init__(
        self, path: Path, loader: Callable[[Path], TenantRegistry] = TenantRegistry.load
    ) -> None:
        self._path = path
        self._loader = loader
        self.registry = self._load()

    def _load(self) -> TenantRegistry:
        registry = self._loader(self._path)
        register_secrets(registry.secrets())
        for tenant in registry.tenants.values():
            if not tenant.webhook_secret.reveal():
                # Every webhook of it gets the same 401 as a wrong secret: say why once, here.
                log.warning(
                    "tenant_without_webhook_secret",
                    instance_id=tenant.instance_id,
                    hint="set webhook_secret_env or webhook_secret_file; "
                    "until then every webhook of this instance is refused (401)",
                )
        return registry

    def reload(self) -> bool:
        """Re-read the registry file; keep the old registry when the new one is invalid.

        Returns:
            Whether the new registry is now in use.

        """
        try:
            self.registry = self._load()
        except ConfigError as exc:
            log.error("tenants_reload_failed", path=str(self._path), reason=exc.message)
            return False
        log.info("tenants_reloaded", path=str(self._path), tenants=len(self.registry.tenants))
        return True


__all__ = [
    "AUTH_HEADERS",
    "TOKEN_HEADERS",
    "TOKEN_QUERY",
    "TenantSource",
    "authenticate",
    "presented_token",
]
