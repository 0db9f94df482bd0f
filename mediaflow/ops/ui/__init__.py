"""The web dashboard under ``/ui/``, served by the API role on its own listener.

Server-rendered pages (aiohttp-jinja2, autoescaped), one small script of our
own in ``static/`` (no CDN, no build step: it works offline), and the same
operator functions as the CLI (``mediaflow.ops.status``, ``dlq``,
``redrive``, ``dismiss``) so the page and the terminal show the same numbers.

:func:`mount` adds it to the API application (``mediaflow serve api`` and
``run all`` do). Login, session cookie and CSRF are
:mod:`mediaflow.ops.ui.session`; headers, login check and origin check are
:mod:`mediaflow.ops.ui.security`.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from mediaflow.config import Settings
from mediaflow.ops.ui import letters, media, pages, proxy, security, session
from mediaflow.ops.ui.overview import Overview
from mediaflow.ops.ui.throttle import LoginThrottle
from mediaflow.processors.projection.api import OWN_AUTH, S3, STORE

HERE = Path(__file__).parent


def mount(app: web.Application, settings: Settings) -> None:
    """Serve the dashboard under ``/ui/`` on the API application ``app``.

    Raises:
        ConfigError: ``MEDIAFLOW_API_TRUSTED_PROXIES`` names something that is
            not an address or a network.
    """
    trusted = proxy.trusted_networks(settings.api_trusted_proxies)
    # A trusted proxy's description of the request first, so every check sees it.
    first = [proxy.forwarded(trusted)] if trusted else []
    ui = web.Application(middlewares=[*first, security.headers, security.login_required])
    aiohttp_jinja2.setup(
        ui,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"], default=True),
    )
    # Sessions are signed with a key of the admin token; any token of the API's TokenSource
    # logs in.
    ui[security.SESSION_KEY] = session.session_key(settings.api_token)
    ui[security.MEDIA_ORIGIN] = security.media_origin(app[S3], settings.s3.bucket)
    ui[letters.SETTINGS] = settings
    ui[pages.OVERVIEW] = Overview(settings, app[S3], app[STORE])
    ui[pages.THROTTLE] = LoginThrottle()
    ui.router.add_get("/login", pages.login_form)
    ui.router.add_post("/login", pages.login)
    ui.router.add_post("/logout", pages.logout)
    ui.router.add_get("/", pages.overview)
    ui.router.add_get("/overview.json", pages.overview_json)
    ui.router.add_get("/dead-letters", letters.list_letters)
    ui.router.add_get("/dead-letters/{id}", letters.show_letter)
    ui.router.add_post("/dead-letters/action", letters.act)
    ui.router.add_get("/media", media.search_page)
    ui.router.add_get("/media/{media_id}", media.detail_page)
    ui.router.add_static("/static/", HERE / "static")
    app[OWN_AUTH] = (*app[OWN_AUTH], f"{security.PREFIX}/")
    app.add_subapp(security.PREFIX, ui)


__all__ = ["mount"]
