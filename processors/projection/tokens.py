"""Who may read the API: the admin token, and tokens scoped to one client.

``MEDIAFLOW_API_TOKEN`` is the admin token: it sees every client. More tokens
are declared in the tenant registry (``MEDIAFLOW_TENANTS_FILE``), by reference
like the tenants' own secrets, never inline::

    [api_tokens."acme-platform"]          # a name for logs and errors
    client_id = "2"                       # sees only client 2's media
    token_env = "MEDIAFLOW_API_TOKEN_ACME"   # or token_file = "/run/secrets/acme"

    [api_tokens."ops-rotation"]
    admin = true                          # sees every client, as MEDIAFLOW_API_TOKEN
    token_file = "/run/secrets/mediaflow-ops"

Several tokens may share a client, so a platform rotates its token by adding
the new one, reloading (SIGHUP), switching, then removing the old one. The
API reads only the ``api_tokens`` tables of the file: it needs none of the
tenants' webhook secrets or provider tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mediaflow.config import Secret
from mediaflow.errors import ConfigError
from mediaflow.logging import get_logger, register_secrets
from mediaflow.tenants import read_registry, resolve_secret

log = get_logger("mediaflow.api")

MIN_TOKEN_LENGTH = 16
"""Characters of a declared token: long enough that guessing one is hopeless."""
ADMIN_NAME = "MEDIAFLOW_API_TOKEN"
_KEYS = {"client_id", "admin", "token_env", "token_file", "token"}


@dataclass(frozen=True, slots=True)
class Scope:
    """Whom a token speaks for: one client, or every client (``client_id`` is ``None``)."""

    name: str
    client_id: str | None = None

    def sees(self, client_id: str | None) -> bool:
        """Whether media of ``client_id`` is visible to this token."""
        return self.client_id is None or client_id == self.client_id


@dataclass(frozen=True, slots=True)
class ApiTokens:
    """Every accepted token, kept as its SHA-256 digest with the scope it grants."""

    digests: tuple[tuple[bytes, Scope], ...]
    secrets: tuple[str, ...] = ()

    def scope_of(self, presented: bytes) -> Scope | None:
        """The scope of the token ``presented``, or ``None`` when it is no token of ours.

        Every known token is compared, in constant time and without stopping at
        a match, so the answer's timing tells nothing about which one matched.
        """
        digest = hashlib.sha256(presented).digest()
        found = None
        for expected, scope in self.digests:
            if hmac.compare_digest(digest, expected):
                found = scope
        return found

    @classmethod
    def admin_only(cls, admin: Secret) -> ApiTokens:
        """Only the admin token."""
        return cls(((_digest(admin), Scope(ADMIN_NAME)),), (admin.reveal(),))

    @classmethod
    def load(
        cls, path: Path, *, admin: Secret, environ: Mapping[str, str] | None = None
    ) -> ApiTokens:
        """The admin token and the ``api_tokens`` declared in the registry at ``path``.

        Raises:
            ConfigError: the file cannot be read; an entry is malformed, names no
                client (nor ``admin = true``), is inline, shorter than
                :data:`MIN_TOKEN_LENGTH`, or has the same value as another token.
        """
        env = os.environ if environ is None else environ
        entries = read_registry(path).get("api_tokens", {})
        if not isinstance(entries, dict):
            raise ConfigError(f"{path}: api_tokens must be a table of named tokens")
        by_value: dict[str, str] = {admin.reveal(): ADMIN_NAME}
        digests = [(_digest(admin), Scope(ADMIN_NAME))]
        for name, entry in entries.items():
            scope, token = _entry(str(name), entry, env, path)
            if token.reveal() in by_value:
                raise ConfigError(
                    f"api token {name!r} has the same value as {by_value[token.reveal()]!r}; "
                    "give each token its own random value"
                )
            by_value[token.reveal()] = str(name)
            digests.append((_digest(token), scope))
        return cls(tuple(digests), tuple(by_value))


def _entry(name: str, entry: object, env: Mapping[str, str], path: Path) -> tuple[Scope, Secret]:
    owner = f"api token {name!r} in {path}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{owner} must be a table with client_id (or admin = true) and token_env")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ConfigError(f"{owner}: unknown key(s) {', '.join(unknown)}; use {sorted(_KEYS)}")
    admin = entry.get("admin", False)
    if not isinstance(admin, bool):
        raise ConfigError(f"{owner}: admin must be true or false")
    if admin == ("client_id" in entry):
        raise ConfigError(
            f"{owner} needs exactly one of client_id (a client's token) or admin = true"
        )
    token = resolve_secret(owner, "token", entry, env)
    if len(token.reveal().strip()) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"{owner} is shorter than {MIN_TOKEN_LENGTH} characters (or not declared: "
            "token_env or token_file); use a long random value, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return Scope(name, None if admin else str(entry["client_id"])), token


def _digest(token: Secret) -> bytes:
    return hashlib.sha256(token.reveal().encode()).digest()


class TokenSource:
    """The tokens in force, reloadable while requests are served.

    Requests read :attr:`tokens` when they arrive; :meth:`reload` replaces it
    between two steps of the event loop, so no request sees half a change.
    """

    def __init__(self, loader: Callable[[], ApiTokens]) -> None:
        self._loader = loader
        self.tokens = self._load()

    @classmethod
    def fixed(cls, tokens: ApiTokens) -> TokenSource:
        """A source that never changes (tests, an API built without a registry)."""
        return cls(lambda: tokens)

    def _load(self) -> ApiTokens:
        tokens = self._loader()
        register_secrets(tokens.secrets)
        return tokens

    def reload(self) -> bool:
        """Re-read the tokens; keep the old ones when the new declaration is invalid.

        Returns:
            Whether the new tokens are now in force.
        """
        try:
            tokens = self._load()
        except ConfigError as exc:
            log.error("api_tokens_reload_failed", reason=exc.message)
            return False
        self.tokens = tokens
        log.info("api_tokens_reloaded", tokens=len(tokens.digests))
        return True


__all__ = ["ADMIN_NAME", "MIN_TOKEN_LENGTH", "ApiTokens", "Scope", "TokenSource"]
