"""The dashboard's login session and CSRF tokens: signed, stateless, tied to the API token.

A browser logs in once with the API token and then carries a session cookie
(HttpOnly, SameSite=Strict, Secure over TLS) instead of the token. The
cookie is ``<expiry>.<nonce>.<signature>``: an HMAC-SHA256 under a key
derived from the API token, so every copy of the API accepts the sessions of
the others without shared state, and changing the token logs everybody out.

Every form that changes something carries a CSRF token, the HMAC of the
session's nonce under the same key: a page of another site can neither read
it nor forge it. Pure functions, the clock passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from mediaflow.config import Secret

COOKIE = "mediaflow_session"
SESSION_TTL_S = 8 * 3600
"""A working shift; then the token is asked for again."""


def _key(token: Secret) -> bytes:
    return hmac.new(
        token.reveal().encode(), b"mediaflow-dashboard-session", hashlib.sha256
    ).digest()


def _sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def token_matches(token: Secret, given: str) -> bool:
    """Whether ``given`` is the API token (constant time)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.reveal().encode())


def new_session(token: Secret, now: float) -> str:
    """A fresh session cookie value, valid for :data:`SESSION_TTL_S`."""
    body = f"{int(now) + SESSION_TTL_S}.{secrets.token_hex(16)}"
    return f"{body}.{_sign(_key(token), body)}"


def session_nonce(token: Secret, cookie: str | None, now: float) -> str | None:
    """The nonce of a valid, unexpired session cookie; ``None`` for anything else."""
    if not cookie or len(cookie) > 200:
        return None
    expiry, _, rest = cookie.partition(".")
    nonce, _, signature = rest.partition(".")
    body = f"{expiry}.{nonce}"
    if not hmac.compare_digest(signature.encode(), _sign(_key(token), body).encode()):
        return None
    if not expiry.isdigit() or int(expiry) < now:
        return None
    return nonce


def csrf_token(token: Secret, nonce: str) -> str:
    """The CSRF token of the session with ``nonce``."""
    return _sign(_key(token), f"csrf|{nonce}")


def csrf_ok(token: Secret, nonce: str, given: str | None) -> bool:
    """Whether ``given`` is the session's CSRF token (constant time)."""
    return given is not None and hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), csrf_token(token, nonce).encode()
    )


__all__ = [
    "COOKIE",
    "SESSION_TTL_S",
    "csrf_ok",
    "csrf_token",
    "new_session",
    "session_nonce",
    "token_matches",
]
