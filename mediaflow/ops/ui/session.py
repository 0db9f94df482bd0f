"""The dashboard's login session and CSRF tokens: signed, stateless, scoped like an API token.

A browser logs in once with an API token (the admin token, or a client's:
:mod:`~mediaflow.processors.projection.tokens`) and then carries a session
cookie (HttpOnly, SameSite=Strict, Secure over TLS) instead of the token. The
cookie is ``<expiry>.<nonce>.<tag>.<scope>.<signature>``:

* ``scope``: whom the session speaks for (the token's name and client), as
  base64url JSON, so every page knows it without a lookup;
* ``tag``: which token opened it, an HMAC of the token's digest, never the
  token itself. Each request checks that a token with this tag and this scope
  is still declared (:func:`still_declared`), so rotating or removing a
  client's token and reloading ends its sessions at once;
* ``signature``: an HMAC-SHA256 under :func:`session_key`, derived from the
  admin token, so every copy of the API accepts the sessions of the others
  without shared state, a scope cannot be edited, and changing the admin
  token logs everybody out.

A client's session is a cookie signed with a key that comes from the admin
token: so that it is no cheap way to test guesses of that token offline,
the key is derived with scrypt (about 16 MiB and tens of milliseconds per
guess), once per process.

Every form that changes something carries a CSRF token, the HMAC of the
session's nonce under the same key: a page of another site can neither read
it nor forge it. Pure functions, the clock passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from mediaflow.config import Secret
from mediaflow.processors.projection.tokens import ApiTokens, Scope

COOKIE = "mediaflow_session"
SESSION_TTL_S = 8 * 3600
"""A working shift; then the token is asked for again."""
MAX_COOKIE = 2048
"""Longer than any cookie we issue (scope names come from the registry); refused unread."""


@dataclass(frozen=True, slots=True)
class Session:
    """A valid session: its nonce (for CSRF), its scope and the tag of the token that opened it."""

    nonce: str
    scope: Scope
    tag: str


def session_key(admin: Secret) -> bytes:
    """The key sessions and CSRF tokens are signed with (slow on purpose: call it once).

    The same for every copy of the API with the same admin token.
    """
    return hashlib.scrypt(
        admin.reveal().encode(), salt=b"mediaflow-dashboard-session", n=2**14, r=8, p=1
    )


def _sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def token_digest(presented: bytes) -> bytes:
    """The digest :class:`ApiTokens` keeps of a token."""
    return hashlib.sha256(presented).digest()


def _tag(key: bytes, digest: bytes) -> str:
    return hmac.new(key, b"token|" + digest, hashlib.sha256).hexdigest()[:32]


def new_session(key: bytes, scope: Scope, digest: bytes, now: float) -> str:
    """A fresh session cookie for ``scope``, opened by the token of ``digest``.

    Args:
        key: :func:`session_key`.
        scope: whom the session speaks for.
        digest: :func:`token_digest` of the token presented at login.
        now: wall-clock seconds.
    """
    packed = json.dumps([scope.name, scope.client_id], separators=(",", ":")).encode()
    scope_part = base64.urlsafe_b64encode(packed).decode().rstrip("=")
    body = f"{int(now) + SESSION_TTL_S}.{secrets.token_hex(16)}.{_tag(key, digest)}.{scope_part}"
    return f"{body}.{_sign(key, body)}"


def read_session(key: bytes, cookie: str | None, now: float) -> Session | None:
    """The session of a well-signed, unexpired cookie; ``None`` for anything else."""
    if not cookie or len(cookie) > MAX_COOKIE:
        return None
    body, _, signature = cookie.rpartition(".")
    if not hmac.compare_digest(signature.encode(), _sign(key, body).encode()):
        return None
    parts = body.split(".")
    if len(parts) != 4 or not parts[0].isdigit() or int(parts[0]) < now:
        return None
    _expiry, nonce, tag, scope_part = parts
    try:
        packed = base64.urlsafe_b64decode(scope_part + "=" * (-len(scope_part) % 4))
        name, client_id = json.loads(packed)
    except (binascii.Error, ValueError, TypeError):
        return None  # signed by us, so only an older cookie format lands here
    return Session(nonce, Scope(str(name), None if client_id is None else str(client_id)), tag)


def still_declared(key: bytes, session: Session, tokens: ApiTokens) -> bool:
    """Whether the token that opened ``session`` is still declared, with the same scope."""
    return any(
        scope == session.scope and hmac.compare_digest(_tag(key, digest), session.tag)
        for digest, scope in tokens.digests
    )


def csrf_token(key: bytes, nonce: str) -> str:
    """The CSRF token of the session with ``nonce``."""
    return _sign(key, f"csrf|{nonce}")


def csrf_ok(key: bytes, nonce: str, given: str | None) -> bool:
    """Whether ``given`` is the session's CSRF token (constant time)."""
    return given is not None and hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), csrf_token(key, nonce).encode()
    )


__all__ = [
    "COOKIE",
    "MAX_COOKIE",
    "SESSION_TTL_S",
    "Session",
    "csrf_ok",
    "csrf_token",
    "new_session",
    "read_session",
    "session_key",
    "still_declared",
    "token_digest",
]
