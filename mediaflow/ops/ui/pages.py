"""Login, logout and the live overview."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from mediaflow.ops.ui import session
from mediaflow.ops.ui.overview import Overview
from mediaflow.ops.ui.render import page
from mediaflow.ops.ui.security import PREFIX, TOKEN

OVERVIEW: web.AppKey[Overview] = web.AppKey("overview", Overview)
MAX_CLIENT = 200


async def login_form(request: web.Request) -> web.Response:
    """``GET /ui/login``."""
    return page(request, "login.html")


async def login(request: web.Request) -> web.StreamResponse:
    """``POST /ui/login``: the API token buys a session cookie."""
    form = await request.post()
    given = form.get("token")
    if not isinstance(given, str) or not session.token_matches(request.app[TOKEN], given):
        return page(request, "login.html", status=401, failed=True)
    response = web.HTTPSeeOther(f"{PREFIX}/")
    response.set_cookie(
        session.COOKIE,
        session.new_session(request.app[TOKEN], time.time()),
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
    client = request.query.get("client", "").strip()
    if len(client) > MAX_CLIENT or "\x00" in client:
        raise web.HTTPBadRequest(text=f"client: at most {MAX_CLIENT} characters, no NUL")
    overview = request.app[OVERVIEW]
    return {
        **await overview.current(),
        "client": client,
        "activity": await overview.chart(client or None),
        "client_view": await overview.client(client) if client else None,
    }


async def overview(request: web.Request) -> web.Response:
    """``GET /ui/[?client=ID]``: the page; its script refreshes it from ``overview.json``."""
    return page(request, "overview.html", data=await _data(request))


async def overview_json(request: web.Request) -> web.Response:
    """``GET /ui/overview.json[?client=ID]``: what the overview page polls."""
    return web.json_response(await _data(request))


__all__ = ["OVERVIEW", "login", "login_form", "logout", "overview", "overview_json"]
