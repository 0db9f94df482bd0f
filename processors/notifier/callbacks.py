"""Where each client wants its notifications: callback URLs and secrets from the tenant registry.

Declared per client, and optionally per instance (an instance's entry wins)::

    [clients."2"]
    callback_url = "https://platform.example/hooks/mediaflow"
    callback_secret_env = "MEDIAFLOW_CALLBACK_SECRET_2"   # or callback_secret_file
    callback_private = true     # the platform listens on a private address: allow it

    [tenants."3B6XIW-ZTS923-GEAY6V"]
    client_id = "2"
    callback_url = "http://10.0.0.7/hooks/media"           # this instance only
    # callback_secret_env / _file: its own secret, else the client's

The secret is a Standard Webhooks secret (``whsec_`` and base64 of 24 to 64
random bytes), referenced like every other secret, never written inline. A
callback URL passes the same outgoing guard as a download (http or https, no
credentials in it, no loopback, private or link-local address unless
``callback_private`` allows it for that client or instance).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook

from mediaflow.config import Secret
from mediaflow.errors import BlockedUrl, ConfigError
from mediaflow.tenants import read_registry, resolve_secret
from mediaflow.url_guard import UrlPolicy

MIN_SECRET_BYTES = 24
"""Random bytes a callback secret must hold at least (Standard Webhooks asks for 24 to 64)."""


@dataclass(frozen=True, slots=True)
class Callback:
    """One callback endpoint: where, signed with what, and which addresses it may resolve to."""

    owner: str
    """Who declared it, for logs and errors (``client '2'``, ``instance 'X'``)."""
    url: str
    secret: Secret = field(repr=False)
    policy: UrlPolicy

    def signer(self) -> Webhook:
        """The Standard Webhooks signer of this endpoint's secret."""
        return Webhook(self.secret.reveal())

    @property
    def host(self) -> str:
        """The endpoint's host, the only part of its URL that logs and errors show."""
        return urlsplit(self.url).hostname or ""


@dataclass(frozen=True, slots=True)
class Callbacks:
    """Every declared callback, by instance and by client."""

    by_instance: Mapping[str, Callback]
    by_client: Mapping[str, Callback]

    def for_media(self, client_id: str, instance_id: str) -> Callback | None:
        """The instance's callback, else its client's, else ``None``."""
        return self.by_instance.get(instance_id) or self.by_client.get(client_id)

    def declared(self) -> list[Callback]:
        """Every declared callback: the clients', then the instances' (for checks)."""
        return [*self.by_client.values(), *self.by_instance.values()]

    def secrets(self) -> list[str]:
        """Every callback secret, for the log redactor."""
        return [c.secret.reveal() for c in self.declared()]

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        allow_private: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> Callbacks:
        """Read the callbacks declared in the tenant registry at ``path``.

        Args:
            path: the tenant registry.
            allow_private: private addresses allowed for every callback (the
                local stack's ``MEDIAFLOW_ALLOW_PRIVATE_ADDRESSES``).
            environ: where ``*_env`` references are read; ``os.environ`` by default.

        Raises:
            ConfigError: the file cannot be read, or a callback's URL or secret is invalid.
        """
        env = os.environ if environ is None else environ
        data = read_registry(path)
        clients: dict[str, Callback] = {}
        for client_id, entry in _tables(data, "clients", path).items():
            callback = _callback(f"client {client_id!r}", entry, env, allow_private, None)
            if callback is not None:
                clients[str(client_id)] = callback
        instances: dict[str, Callback] = {}
        for instance_id, entry in _tables(data, "tenants", path).items():
            inherited = clients.get(str(entry.get("client_id", "")))
            callback = _callback(f"instance {instance_id!r}", entry, env, allow_private, inherited)
            if callback is not None:
                instances[str(instance_id)] = callback
        return cls(instances, clients)


def _tables(data: Mapping[str, object], name: str, path: Path) -> dict[str, dict[str, object]]:
    tables = data.get(name, {})
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        raise ConfigError(f'{path}: {name} must be a table of tables ([{name}."<id>"])')
    return tables


def _callback(
    owner: str,
    entry: Mapping[str, object],
    env: Mapping[str, str],
    allow_private: bool,
    inherited: Callback | None,
) -> Callback | None:
    if "callback_url" not in entry:
        return None
    url = str(entry["callback_url"])
    private = entry.get("callback_private", False)
    if not isinstance(private, bool):
        raise ConfigError(f"{owner}: callback_private must be true or false")
    host = (urlsplit(url).hostname or "").lower()
    policy = UrlPolicy((host,), allow_private or private)
    try:
        policy.check_url(url)
    except BlockedUrl as exc:
        raise ConfigError(
            f"{owner}: callback_url is refused: {exc.message}; a platform that receives "
            "callbacks on a private address sets callback_private = true for it"
        ) from exc
    secret = resolve_secret(owner, "callback_secret", entry, env)
    if not secret.reveal() and inherited is not None:
        secret = inherited.secret
    _check_secret(owner, secret)
    return Callback(owner, url, secret, policy)


def _check_secret(owner: str, secret: Secret) -> None:
    hint = (
        "set callback_secret_env or callback_secret_file to a Standard Webhooks secret: "
        'whsec_ and the base64 of 24 to 64 random bytes, e.g. `python -c "import base64, '
        "secrets; print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\"`"
    )
    if not secret.reveal():
        raise ConfigError(f"{owner} declares a callback_url without a secret; {hint}")
    text = secret.reveal().removeprefix("whsec_")
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{owner}: the callback secret is not base64; {hint}") from exc
    if len(key) < MIN_SECRET_BYTES:
        raise ConfigError(f"{owner}: the callback secret holds {len(key)} bytes; {hint}")


__all__ = ["MIN_SECRET_BYTES", "Callback", "Callbacks"]
