"""The tenant registry: which W-API instance belongs to which client, and its secrets.

A TOML file (``MEDIAFLOW_TENANTS_FILE``, default ``deploy/tenants.toml``)::

    [tenants."3B6XIW-ZTS923-GEAY6V"]
    client_id = "2"
    provider = "wapi"                       # wapi | evolution | zapi
    webhook_secret_env = "WAPI_HOOK_SECRET_3B6XIW"   # or webhook_secret_file
    wapi_token_env = "WAPI_TOKEN_3B6XIW"             # or wapi_token_file
    fetch_order = ["wapi", "direct"]        # optional, per tenant

Secrets are never written in the file itself: each is a reference to an
environment variable (``*_env``) or a file (``*_file``), resolved when the
registry is loaded. The webhook receiver reloads the registry on SIGHUP.
"""

from __future__ import annotations

import hmac
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mediaflow.config import Secret
from mediaflow.errors import ConfigError
from mediaflow.events import Provider

FETCH_PATHS = ("wapi", "direct", "link")


@dataclass(frozen=True, slots=True)
class Tenant:
    """One provider instance and the client that owns it."""

    instance_id: str
    client_id: str
    provider: str
    webhook_secret: Secret
    wapi_token: Secret
    fetch_order: tuple[str, ...] | None = None

    def accepts(self, presented: str | None) -> bool:
        """Whether ``presented`` is this tenant's webhook secret (constant time)."""
        expected = self.webhook_secret.reveal()
        return bool(expected) and hmac.compare_digest((presented or "").encode(), expected.encode())


@dataclass(frozen=True, slots=True)
class TenantRegistry:
    """All tenants, by instance id."""

    tenants: Mapping[str, Tenant]

    def get(self, instance_id: str) -> Tenant | None:
        """The tenant of an instance, or ``None`` when unknown."""
        return self.tenants.get(instance_id)

    def secrets(self) -> list[str]:
        """Every secret value, for the log redactor."""
        return [
            s.reveal() for t in self.tenants.values() for s in (t.webhook_secret, t.wapi_token) if s
        ]

    @classmethod
    def load(cls, path: Path, environ: Mapping[str, str] | None = None) -> TenantRegistry:
        """Read and validate the registry file, resolving secret references.

        Raises:
            ConfigError: the file is missing or malformed, or a secret reference
                points at an unset variable or a missing file.

        """
        env = os.environ if environ is None else environ
        data = read_registry(path)
        entries = data.get("tenants", {})
        if not isinstance(entries, dict):
            raise ConfigError(f"tenant registry {path}: tenants must be a table of instances")
        tenants = {}
        for instance_id, entry in entries.items():
            if not isinstance(entry, dict):
                raise ConfigError(
                    f"tenant {instance_id!r} in {path} must be a table "
                    f'([tenants."{instance_id}"] with client_id and its secrets)'
                )
            tenants[instance_id] = _tenant(instance_id, entry, env, Path(path))
        return cls(tenants)


def read_registry(path: Path) -> dict[str, Any]:
    """The registry file as TOML data (its tenants, and the API's tokens).

    Raises:
        ConfigError: the file is missing, unreadable, not UTF-8 or not TOML.
    """
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"tenant registry {path} does not exist; start from deploy/tenants.toml "
            "or set MEDIAFLOW_TENANTS_FILE"
        ) from exc
    except OSError as exc:  # a directory, no permission...
        raise ConfigError(f"tenant registry {path} cannot be read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"tenant registry {path} is not UTF-8 text (bad byte at {exc.start}); save it as UTF-8"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"tenant registry {path} is not valid TOML: {exc}") from exc


def _tenant(
    instance_id: str, entry: Mapping[str, object], env: Mapping[str, str], path: Path
) -> Tenant:
    if "client_id" not in entry:
        raise ConfigError(f"tenant {instance_id!r} in {path} has no client_id")
    provider = str(entry.get("provider", Provider.WAPI.value))
    if provider not in set(Provider):
        raise ConfigError(
            f"tenant {instance_id!r}: provider {provider!r} is not one of "
            f"{', '.join(p.value for p in Provider)}"
        )
    order = entry.get("fetch_order")
    if order is not None:
        if not isinstance(order, list):
            raise ConfigError(
                f"tenant {instance_id!r}: fetch_order must be a list, e.g. {list(FETCH_PATHS)}"
            )
        order = tuple(str(o) for o in order)
        unknown = set(order) - set(FETCH_PATHS)
        if unknown:
            raise ConfigError(
                f"tenant {instance_id!r}: unknown fetch_order entries {sorted(unknown)}"
            )
    return Tenant(
        instance_id=instance_id,
        client_id=str(entry["client_id"]),
        provider=provider,
        webhook_secret=resolve_secret(f"tenant {instance_id!r}", "webhook_secret", entry, env),
        wapi_token=resolve_secret(f"tenant {instance_id!r}", "wapi_token", entry, env),
        fetch_order=order,
    )


def resolve_secret(
    owner: str, name: str, entry: Mapping[str, object], env: Mapping[str, str]
) -> Secret:
    """Resolve the secret ``name`` of a registry entry from its ``<name>_env`` or ``<name>_file``.

    Args:
        owner: how errors name the entry (``tenant 'X'``).
        name: the secret's name (``webhook_secret``).
        entry: the entry's table.
        env: the environment to read ``<name>_env`` from.

    Returns:
        The secret, empty when the entry declares none.

    Raises:
        ConfigError: the variable is unset, the file unreadable, or the secret
            is written inline.
    """
    if f"{name}_env" in entry:
        variable = str(entry[f"{name}_env"])
        if variable not in env:
            raise ConfigError(f"{owner}: {name}_env names {variable}, which is not set")
        return Secret(env[variable])
    if f"{name}_file" in entry:
        file = Path(str(entry[f"{name}_file"]))
        try:
            return Secret(file.read_text().strip())
        except OSError as exc:
            raise ConfigError(f"{owner}: cannot read {name}_file {file}: {exc.strerror}") from exc
    if name in entry:
        raise ConfigError(
            f"{owner}: put {name} in an environment variable ({name}_env) "
            f"or a file ({name}_file), not in the registry itself"
        )
    return Secret("")


__all__ = ["FETCH_PATHS", "Tenant", "TenantRegistry", "read_registry", "resolve_secret"]
