"""Who may post a webhook: the per-instance secret, checked in constant time.

W-API signs nothing, so each instance's integrator shares a secret with us; the
provider sends it as the ``token`` query parameter or the ``X-Webhook-Token``
header (Evolution commonly sends it as ``apikey``). The instance, though, is
named only in the body, by every provider. So a request is checked twice:

1. from its head, before its body is read (:class:`KnownSecrets`): the secret
   it presents must be that of some tenant of the endpoint's provider. Anyone
   else is refused without a byte of their body being read or inflated.
2. after its body is parsed (:func:`authenticate`): the secret must be that of
   the instance the body names.

An unknown instance, an instance of another provider and a wrong secret all
get the same 401, and take the same path through :func:`hmac.compare_digest`,
so the answer reveals nothing about which instances exist.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mediaflow.errors import ConfigError
from mediaflow.events import Provider
from mediaflow.logging import get_logger, register_secrets
from mediaflow.producers.webhook.validation import Rejected
from mediaflow.tenants import Tenant, TenantRegistry

log = get_logger("mediaflow.webhook")

TOKEN_QUERY = "token"
TOKEN_HEADERS = ("X-Webhook-Token",)
EXTRA_TOKEN_HEADERS: Mapping[Provider, tuple[str, ...]] = {Provider.EVOLUTION: ("apikey",)}

_UNAUTHORIZED = "unknown instance or wrong token"
_SURROGATE_RANGE = re.compile("[\ud800-\udfff]")
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
        hmac.compare_digest(_utf8(presented or ""), _DUMMY)
        raise unauthorized()
    if not _is_text(presented) or not tenant.accepts(presented):
        raise unauthorized()
    return tenant


def unauthorized(*, hang_up: bool = False) -> Rejected:
    """Return the one 401 every authentication failure gets.

    Args:
        hang_up: close the connection once the answer is out (the body is
            still arriving, and nobody will read it).

    """
    return Rejected(401, "unauthorized", _UNAUTHORIZED, hang_up=hang_up)


def _utf8(text: str) -> bytes:
    # "surrogatepass": a header byte that is not UTF-8 reaches us as a lone
    # surrogate, which the strict codec refuses to encode.
    return text.encode("utf-8", "surrogatepass")


def _is_text(presented: str | None) -> bool:
    # A secret is UTF-8 text: a token holding a lone surrogate cannot be one.
    return presented is None or not _SURROGATE_RANGE.search(presented)


@dataclass(frozen=True, slots=True)
class KnownSecrets:
    """Which webhook secrets open which provider's endpoint: what a request's head can prove.

    Holds the SHA-256 of each secret, not the secret: a lookup costs the same
    for every token, and the set's hashing works on digests, of which timing
    reveals nothing useful about the secrets themselves.
    """

    digests: frozenset[tuple[str, bytes]]

    @classmethod
    def of(cls, registry: TenantRegistry) -> KnownSecrets:
        """The secrets of every tenant of ``registry`` that has one."""
        return cls(
            frozenset(
                (tenant.provider, hashlib.sha256(_utf8(tenant.webhook_secret.reveal())).digest())
                for tenant in registry.tenants.values()
                if tenant.webhook_secret
            )
        )

    def admits(self, provider: Provider, presented: str | None) -> bool:
        """Whether ``presented`` is the secret of some tenant of ``provider``."""
        if not presented:
            return False
        return (provider.value, hashlib.sha256(_utf8(presented)).digest()) in self.digests


class TenantSource:
    """The current tenant registry and its known secrets, swappable while requests are served.

    Reads take :attr:`registry` (or :attr:`known`) when they need it;
    :meth:`reload` replaces both between two steps of the event loop, so no
    request is dropped.
    """

    def __init__(
        self, path: Path, loader: Callable[[Path], TenantRegistry] = TenantRegistry.load
    ) -> None:
        self._path = path
        self._loader = loader
        self.registry = self._load()
        self.known = KnownSecrets.of(self.registry)

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
            registry = self._load()
        except ConfigError as exc:
            log.error("tenants_reload_failed", path=str(self._path), reason=exc.message)
            return False
        self.registry, self.known = registry, KnownSecrets.of(registry)
        log.info("tenants_reloaded", path=str(self._path), tenants=len(self.registry.tenants))
        return True


__all__ = [
    "TOKEN_HEADERS",
    "TOKEN_QUERY",
    "KnownSecrets",
    "TenantSource",
    "authenticate",
    "presented_token",
    "unauthorized",
]
