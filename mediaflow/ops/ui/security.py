"""What every dashboard response and request goes through: headers, login, CSRF, origin.

* Every response carries a strict Content-Security-Policy (scripts and styles
  only from the dashboard's own files, no inline script, no framing; images
  and players only from the dashboard and the S3 endpoint that presigned
  links point at), ``nosniff``, a same-origin referrer policy and ``no-store``.
* Every page but the login form and the static files needs a valid session
  (:mod:`mediaflow.ops.ui.session`) whose token is still declared in the API's
  :class:`~mediaflow.processors.projection.tokens.TokenSource` (a reload that
  rotates or removes it ends the session); a browser without one is sent to
  the login. The session's scope is :data:`SCOPE` of the request: a client's
  session sees only that client's media, dead letters and counts.
* Every POST must come from a page of this origin (``Origin``, when the browser
  sends it) and, but the login itself, carry the session's CSRF token.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from mediaflow.ops.ui import session
from mediaflow.processors.projection.api import TOKENS
from mediaflow.processors.projection.tokens import Scope

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

NONCE: web.RequestKey[str] = web.RequestKey("session_nonce", str)
SCOPE: web.RequestKey[Scope] = web.RequestKey("session_scope", Scope)
SESSION_KEY: web.AppKey[bytes] = web.AppKey("session_key", bytes)
"""What sessions are signed with (:func:`~mediaflow.ops.ui.session.session_key`)."""
MEDIA_ORIGIN: web.AppKey[str] = web.AppKey("media_origin", str)
PREFIX = "/ui"
OPEN_PATHS = frozenset({f"{PREFIX}/login"})


def content_security_policy(media_origin: str) -> str:
    """The policy of every page; ``media_origin`` serves presigned previews (may be empty)."""
    media = f"'self' {media_origin}".strip()
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {media}",
            f"media-src {media}",
            "connect-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


def media_origin(s3: Any, bucket: str) -> str:
    """The origin presigned links of ``bucket`` point at (the endpoint, or AWS's bucket host).

    Presigning is local (no request is sent), so this is exact for any
    endpoint and addressing style.
    """
    probe = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "probe"}, ExpiresIn=1
    )
    return origin_of(probe)


def origin_of(url: str | None) -> str:
    """``scheme://host[:port]`` of ``url`` ('' when it has none)."""
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


@web.middleware
async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Add the security headers to every response, errors and redirects included."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    response.headers["Content-Security-Policy"] = content_security_policy(request.app[MEDIA_ORIGIN])
    response.headers["X-Content-Type-Options"] = "nosniff"
    # same-origin, not no-referrer: under no-referrer browsers send "Origin: null" on
    # our own form posts, which the origin check would refuse.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    if not request.path.startswith(f"{PREFIX}/static/"):
        response.headers["Cache-Control"] = "no-store"
    if isinstance(response, web.HTTPException):
        raise response
    return response


@web.middleware
async def login_required(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Send a browser without a valid session to the login page; check POSTs."""
    if request.method == "POST" and not _same_origin(request):
        raise web.HTTPForbidden(text="cross-origin form refused")
    if request.path in OPEN_PATHS or request.path.startswith(f"{PREFIX}/static/"):
        return await handler(request)
    key = request.app[SESSION_KEY]
    current = session.read_session(key, request.cookies.get(session.COOKIE), time.time())
    tokens = request.config_dict[TOKENS].tokens
    if current is None or not session.still_declared(key, current, tokens):
        raise web.HTTPSeeOther(f"{PREFIX}/login")
    if request.method == "POST":
        form = await request.post()
        given = form.get("csrf")
        if not session.csrf_ok(key, current.nonce, given if isinstance(given, str) else None):
            raise web.HTTPForbidden(text="missing or wrong CSRF token; reload the page")
    request[NONCE] = current.nonce
    request[SCOPE] = current.scope
    return await handler(request)


def client_of(request: web.Request) -> str | None:
    """The client a logged-in session is limited to; ``None`` for an admin session."""
    return request[SCOPE].client_id


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not sent by every browser on same-origin POSTs; SameSite and CSRF hold
    return origin == f"{request.scheme}://{request.host}"


__all__ = [
    "MEDIA_ORIGIN",
    "NONCE",
    "OPEN_PATHS",
    "PREFIX",
    "SCOPE",
    "SESSION_KEY",
    "client_of",
    "content_security_policy",
    "headers",
    "login_required",
    "media_origin",
    "origin_of",
]
