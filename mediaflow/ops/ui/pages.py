"""Login, logout and the live overview."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from mediaflow.ops.ui import scoped, session
from mediaflow.ops.ui.overview import Overview
from mediaflow.ops.ui.render import page
from mediaflow.ops.ui.security import PREFIX, SESSION_KEY, client_of
from mediaflow.ops.ui.throttle import LoginThrottle
from mediaflow.processors.projection.api import STORE, TOKENS

OVERVIEW: web.AppKey[Overview] = web.AppKey("overview", Overview)
THROTTLE: web.AppKey[LoginThrottle] = web.AppKey("login_throttle", LoginThrottle)
MAX_CLIENT = 200


async def login_form(request: web.Request) -> web.Response:
    """``GET /ui/login``."""
    return page(request, "login.html")


async def login(request: web.Request) -> web.StreamResponse:
    """``POST /ui/login``: any token the API accepts buys a session cookie of its scope.

    Failed logins are limited per client address (:mod:`mediaflow.ops.ui.throttle`).
    """
    throttle = request.app[THROTTLE]
    wait = throttle.retry_after(request.remote)
    if wait is not None:
        limited = page(request, "login.html", status=429, retry_after=wait)
        limited.headers["Retry-After"] = str(wait)
        return limited
    form = await request.post()
    given = form.get("token")
    # As the API reads a bearer token: surrounding blanks dropped, bytes compared.
    presented = given.strip().encode("utf-8", "surrogateescape") if isinstance(given, str) else b""
    scope = request.config_dict[TOKENS].tokens.scope_of(presented) if presented else None
    if scope is None:
        throttle.failed(request.remote)
        return page(request, "login.html", status=401, failed=True)
    cookie = session.new_session(
        request.app[SESSION_KEY], scope, session.token_digest(presented), time.time()
    )
    response = web.HTTPSeeOther(f"{PREFIX}/")
    response.set_cookie(
        session.COOKIE,
        cookie,
        max_age=session.SESSION_TTL_S,
        path=f"{PREFIX}/",
        httponly=True,
        secure=request.secure,
        samesite="Strict",
    )
    raise response


async def logout(_request: web.Request) -> web.StreamResponse:
    """``POST /ui/logout``."""
    response = web.HTTPSeeOther(f"{PREFIX}/login")
    response.del_cookie(session.COOKIE, path=f"{PREFIX}/")
    raise response


async def _data(request: web.Request) -> dict[str, Any]:
    asked = request.query.get("client", "").strip()
    if len(asked) > MAX_CLIENT or "\x00" in asked:
        raise web.HTTPBadRequest(text=f"client: at most {MAX_CLIENT} characters, no NUL")
    own = client_of(request)
    client = own or asked  # a client's session sees its own client, whatever it asks
    overview = request.app[OVERVIEW]
    data = await overview.current()
    if own is not None:
        stats = await asyncio.to_thread(request.config_dict[STORE].stats, own)
        data = scoped.client_overview(data, stats, int(time.time() * 1000))
    return {
        **data,
        "client": client,
        "scoped": own is not None,
        "activity": await overview.chart(client or None),
        "client_view": await overview.client(client) if client else None,
    }


async def overview(request: web.Request) -> web.Response:
    """``GET /ui/[?client=ID]``: the page; its script refreshes it from ``overview.json``."""
    return page(request, "overview.html", data=await _data(request))


async def overview_json(request: web.Request) -> web.Response:
    """``GET /ui/overview.json[?client=ID]``: what the overview page polls."""
    return web.json_response(await _data(request))


__all__ = ["OVERVIEW", "THROTTLE", "login", "login_form", "logout", "overview", "overview_json"]
