"""Login, logout and the live overview."""

from __future__ import annotations

import time

from aiohttp import web

from mediaflow.ops.ui import session
from mediaflow.ops.ui.overview import Overview
from mediaflow.ops.ui.render import page
from mediaflow.ops.ui.security import PREFIX, TOKEN

OVERVIEW: web.AppKey[Overview] = web.AppKey("overview", Overview)


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


async def overview(request: web.Request) -> web.Response:
    """``GET /ui/``: the page; its script fills and refreshes it from ``overview.json``."""
    return page(request, "overview.html", data=await request.app[OVERVIEW].current())


async def overview_json(request: web.Request) -> web.Response:
    """``GET /ui/overview.json``: what the overview page polls."""
    return web.json_response(await request.app[OVERVIEW].current())


__all__ = ["OVERVIEW", "login", "login_form", "logout", "overview", "overview_json"]
