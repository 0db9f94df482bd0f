"""Render a dashboard template with what every page needs (CSRF token, navigation)."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from mediaflow.ops.ui import session
from mediaflow.ops.ui.security import NONCE, PREFIX, SCOPE, SESSION_KEY


def page(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """Render ``template``; Jinja2 escapes every value (autoescape is on for ``.html``)."""
    nonce = request.get(NONCE)
    csrf = session.csrf_token(request.app[SESSION_KEY], nonce) if nonce else ""
    scope = request.get(SCOPE)
    common = {
        "prefix": PREFIX,
        "csrf": csrf,
        "logged_in": bool(nonce),
        "session_client": scope.client_id if scope else None,
    }
    return aiohttp_jinja2.render_template(
        template,
        request,
        {**common, **context},
        status=status,
    )


__all__ = ["page"]
