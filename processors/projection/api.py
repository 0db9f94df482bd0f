"""The read API: media state, listings, stats and presigned downloads over HTTP (aiohttp, JSON).

``mediaflow serve api`` runs :func:`main`. The contract is ``openapi.yaml``
next to this module, also served at ``GET /openapi.yaml``.

Every other route needs ``Authorization: Bearer <token>`` of a known token
(compared in constant time): the admin token ``MEDIAFLOW_API_TOKEN`` sees
every client, a client token (:mod:`~mediaflow.processors.projection.tokens`)
only its own client, and another client's media is a 404 to it. The API
refuses to start with an empty admin token, or with the local stack's
well-known one on an address other than loopback.
Errors are JSON ``{"error", "detail"}``: 401 without a valid token, 404 for
an unknown media or route, 409 for a download of a media not stored yet, 422
for a query the API cannot use. Client input never causes a 500.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import ipaddress
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from mediaflow.config import LOCAL_API_TOKEN, Secret, Settings
from mediaflow.errors import ConfigError
from mediaflow.logging import get_logger
from mediaflow.media_state import MediaRow, MediaStatus
from mediaflow.processors.projection.tokens import ApiTokens, Scope, TokenSource
from mediaflow.processors.projection.views import (
    Invalid,
    encode_cursor,
    iso,
    parse_query,
    row_json,
)
from mediaflow.serving import listen, raise_open_files_limit
from mediaflow.signals import stop_on_signals
from mediaflow.storage.objects import download_url
from mediaflow.storage.projection import ProjectionStore, open_store
from mediaflow.storage.s3 import s3_client
from mediaflow.stored_content import attachment, content_type

log = get_logger("mediaflow.api")

OPENAPI_FILE = Path(__file__).with_name("openapi.yaml")
_PUBLIC_PATHS = {"/openapi.yaml"}
_PAGING = {"cursor", "limit"}

STORE: web.AppKey[ProjectionStore] = web.AppKey("store", ProjectionStore)  # type: ignore[type-abstract]
S3: web.AppKey[Any] = web.AppKey("s3", object)
TOKENS: web.AppKey[TokenSource] = web.AppKey("tokens", TokenSource)
SCOPE: web.RequestKey[Scope] = web.RequestKey("scope", Scope)
PRESIGN_TTL: web.AppKey[int] = web.AppKey("presign_ttl", int)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock", object)  # type: ignore[arg-type]
OWN_AUTH: web.AppKey[tuple[str, ...]] = web.AppKey("own_auth", tuple)
"""Path prefixes mounted with an authentication of their own (the dashboard's session)."""

Mount = Callable[[web.Application, Settings], None]
"""Adds routes to the API application before it serves (the dashboard, from the CLI)."""


def error(status: int, code: str, detail: str) -> web.Response:
    """Return the JSON error body every failure uses."""
    return web.json_response({"error": code, "detail": detail}, status=status)


# -- handlers ---------------------------------------------------------------------------


async def _row_of(request: web.Request) -> MediaRow | None:
    """The media of the path, if the token may see it: another client's media is not found.

    404 rather than 403, so a client token cannot even learn that a media id exists.
    """
    media_id = request.match_info["media_id"]
    if "\x00" in media_id:  # no media id has one, and PostgreSQL refuses them in text
        return None
    row = await asyncio.to_thread(request.app[STORE].get, media_id)
    return row if row is not None and request[SCOPE].sees(row.client_id) else None


async def get_media(request: web.Request) -> web.Response:
    """``GET /media/{media_id}``."""
    row = await _row_of(request)
    if row is None:
        return error(
            404, "not_found", f"no media {request.match_info['media_id']!r} in the projection"
        )
    return web.json_response(row_json(row))


async def list_media(request: web.Request) -> web.Response:
    """``GET /media``: filtered, newest first, keyset-paginated."""
    return await _listing(request, request.query, _names(request))


async def message_media(request: web.Request) -> web.Response:
    """``GET /instances/{instance_id}/messages/{message_id}/media``: the media of one message.

    The same answer as ``GET /media?instance_id=…&message_id=…``; the query
    may only page it (``limit``, ``cursor``).
    """
    other = sorted(set(_names(request)) - _PAGING)
    if other:
        return error(
            422, "invalid_query", f"unknown parameter(s): {', '.join(other)}; use cursor, limit"
        )
    ids = {name: request.match_info[name] for name in ("instance_id", "message_id")}
    return await _listing(request, {**request.query, **ids}, [*_names(request), *ids])


def _names(request: web.Request) -> list[str]:
    """Every query parameter name, repeated as often as it was given."""
    return [key for key, _ in request.query.items()]


async def _listing(
    request: web.Request, params: Mapping[str, str], keys: list[str]
) -> web.Response:
    try:
        query = parse_query(params, keys)
    except Invalid as exc:
        return error(422, "invalid_query", str(exc))
    if _foreign(request, query.client_id):
        return web.json_response({"items": [], "next_cursor": None})
    # The scope is a filter of every page, so no cursor (whoever made it) reaches past it.
    query = dataclasses.replace(query, client_id=request[SCOPE].client_id or query.client_id)
    page = await asyncio.to_thread(request.app[STORE].list, query)
    # A message lookup is how the platform finds its files: hand it the links too.
    # A plain listing stays cheap (up to 500 rows, no presigning).
    view = _with_link(request.app) if query.message_id is not None else row_json
    return web.json_response(
        {
            "items": [view(r) for r in page.rows],
            "next_cursor": encode_cursor(page.next_after) if page.next_after else None,
        }
    )


def _foreign(request: web.Request, asked: str | None) -> bool:
    """Whether a client token asked for another client (answered as if nothing matched)."""
    own = request[SCOPE].client_id
    return own is not None and asked is not None and asked != own


def _with_link(app: web.Application) -> Callable[[MediaRow], dict[str, Any]]:
    ttl_s = app[PRESIGN_TTL]
    expires_at = iso(int((app[CLOCK]() + ttl_s) * 1000))

    def view(row: MediaRow) -> dict[str, Any]:
        url = _presigned(app, row)
        return {
            **row_json(row),
            "download_url": url,
            "download_url_expires_at": expires_at if url else None,
        }

    return view


def _presigned(app: web.Application, row: MediaRow) -> str | None:
    """A short-lived link to the stored object, or ``None`` when it is not stored."""
    if row.status != MediaStatus.STORED or not row.bucket or not row.object_key:
        return None
    return download_url(
        app[S3],
        row.bucket,
        row.object_key,
        # From the declared fields, as the downloader chose them: an object stored
        # before the allowlist existed is served as what it would be stored as now.
        content_type=content_type(row.media_type, row.mimetype),
        disposition=attachment(
            row.media_type, row.mimetype, row.file_name, fallback=row.message_id or row.media_id
        ),
        ttl_s=app[PRESIGN_TTL],
    )


async def download(request: web.Request) -> web.Response:
    """``GET /media/{media_id}/download``: 302 to a short-lived presigned URL.

    The link makes a browser save the object (``Content-Disposition:
    attachment``) with an allowlisted ``Content-Type``, never render it.
    """
    media_id = request.match_info["media_id"]
    row = await _row_of(request)
    if row is None:
        return error(404, "not_found", f"no media {media_id!r} in the projection")
    url = _presigned(request.app, row)
    if url is None:
        return error(409, "not_stored", f"media {media_id!r} is {row.status}, not stored yet")
    raise web.HTTPFound(location=url)


async def stats(request: web.Request) -> web.Response:
    """``GET /stats``: of every client for an admin token, of its own for a client's."""
    current = await asyncio.to_thread(request.app[STORE].stats, request[SCOPE].client_id)
    oldest = current.oldest_in_flight_at
    now_ms = int(request.app[CLOCK]() * 1000)
    return web.json_response(
        {
            "total": current.total,
            "by_status": current.by_status,
            "by_media_type": current.by_media_type,
            "by_client": current.by_client,
            "dead_letters": current.dead_letters,
            "oldest_in_flight_at": iso(oldest),
            "oldest_in_flight_age_s": None if oldest is None else max(0, now_ms - oldest) / 1000,
        }
    )


async def daily(request: web.Request) -> web.Response:
    """``GET /stats/daily``: counts per client, instance, day and status."""
    unknown = set(request.query) - {"client_id", "since_day"}
    if any("\x00" in value for value in request.query.values()):
        return error(422, "invalid_query", "parameters must not contain NUL characters")
    if unknown:
        return error(422, "invalid_query", f"unknown parameter(s): {', '.join(sorted(unknown))}")
    since_day = request.query.get("since_day")
    if since_day is not None:
        try:
            since_day = datetime.strptime(since_day, "%Y-%m-%d").strftime("%Y-%m-%d")
        except ValueError:
            return error(422, "invalid_query", "since_day must be a date, YYYY-MM-DD")
    asked = request.query.get("client_id")
    counts = (
        []
        if _foreign(request, asked)
        else await asyncio.to_thread(
            request.app[STORE].daily_counts,
            client_id=request[SCOPE].client_id or asked,
            since_day=since_day,
        )
    )
    return web.json_response(
        {
            "items": [
                {
                    "client_id": c.client_id,
                    "instance_id": c.instance_id,
                    "day": c.day,
                    "status": c.status,
                    "count": c.count,
                }
                for c in counts
            ]
        }
    )


async def openapi(_request: web.Request) -> web.Response:
    """``GET /openapi.yaml``: the contract, without authentication."""
    return web.Response(text=OPENAPI_FILE.read_text(), content_type="application/yaml")


# -- middleware -------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn aiohttp's HTTP errors (404 route, 405 method...) into the JSON error body."""
    try:
        return await handler(request)
    except web.HTTPRedirection:
        raise
    except web.HTTPException as exc:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        response = error(exc.status, code, exc.reason)
        if "Allow" in exc.headers:  # a 405 must say which methods are allowed (RFC 9110)
            response.headers["Allow"] = exc.headers["Allow"]
        return response


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require ``Authorization: Bearer <token>`` of a known token; remember its scope."""
    if request.path in _PUBLIC_PATHS or request.path.startswith(request.app[OWN_AUTH]):
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    # aiohttp decodes header bytes that are not UTF-8 with surrogateescape: encode them back.
    given_bytes = given.strip().encode("utf-8", "surrogateescape")
    scope = request.app[TOKENS].tokens.scope_of(given_bytes)
    if scheme.lower() != "bearer" or scope is None:
        response = error(401, "unauthorized", "send Authorization: Bearer <MEDIAFLOW_API_TOKEN>")
        response.headers["WWW-Authenticate"] = 'Bearer realm="mediaflow"'
        return response
    request[SCOPE] = scope
    return await handler(request)


def check_token(token: Secret, host: str) -> None:
    """Refuse a token that lets anyone in: an empty one, or the local default off loopback.

    Args:
        token: the bearer token clients must send.
        host: the address the API listens on.

    Raises:
        ConfigError: the token is empty, or is :data:`~mediaflow.config.LOCAL_API_TOKEN`
            and ``host`` is not a loopback address.
    """
    _refuse_empty(token)
    if token.reveal() == LOCAL_API_TOKEN and not _is_loopback(host):
        raise ConfigError(
            f"MEDIAFLOW_API_TOKEN is the well-known local default and the API would listen "
            f"on {host or 'every address'}; set a long random token, or MEDIAFLOW_API_HOST="
            "127.0.0.1"
        )


def _refuse_empty(token: Secret) -> None:
    if not token.reveal().strip():
        raise ConfigError(
            "MEDIAFLOW_API_TOKEN is empty, so anyone could read the API; set it to a long "
            "random value, e.g. the output of `python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost may resolve to anything
        return False


def create_app(
    *,
    store: ProjectionStore,
    token: Secret,
    s3: Any,
    presign_ttl_s: int = 300,
    clock: Callable[[], float] = time.time,
    tokens: TokenSource | None = None,
) -> web.Application:
    """Build the API application.

    Args:
        store: the projection store to read.
        token: the admin token (``MEDIAFLOW_API_TOKEN``), which sees every client.
        s3: a boto3 S3 client (only used to presign; the bucket stays private).
        presign_ttl_s: how long a download URL stays valid.
        clock: wall-clock seconds, for ages in ``/stats``.
        tokens: every accepted token with its scope (see
            :mod:`~mediaflow.processors.projection.tokens`); without it, only ``token``.

    Raises:
        ConfigError: the token is empty.
    """
    _refuse_empty(token)
    app = web.Application(middlewares=[json_errors, bearer_auth])
    app[STORE] = store
    app[S3] = s3
    app[TOKENS] = tokens or TokenSource.fixed(ApiTokens.admin_only(token))
    app[PRESIGN_TTL] = presign_ttl_s
    app[CLOCK] = clock
    app[OWN_AUTH] = ()
    app.router.add_get("/openapi.yaml", openapi)
    app.router.add_get("/media", list_media)
    app.router.add_get("/media/{media_id}", get_media)
    app.router.add_get("/media/{media_id}/download", download)
    app.router.add_get("/instances/{instance_id}/messages/{message_id}/media", message_media)
    app.router.add_get("/stats", stats)
    app.router.add_get("/stats/daily", daily)
    return app


def main(_args: argparse.Namespace, settings: Settings, *, mount: Mount | None = None) -> int:
    """Serve the API on ``settings.api_host:api_port`` until SIGINT/SIGTERM; SIGHUP reloads tokens.

    ``mount`` adds routes of a higher layer (the dashboard) to the same listener.

    Raises:
        ConfigError: a token anyone could send (see :func:`check_token`), or an
            invalid ``api_tokens`` declaration in the tenant registry.
    """
    check_token(settings.api_token, settings.api_host)
    tokens = TokenSource(
        functools.partial(ApiTokens.load, settings.tenants_file, admin=settings.api_token)
    )
    store = open_store(settings.projection_db_url)
    app = create_app(
        store=store,
        token=settings.api_token,
        s3=s3_client(settings.s3),
        presign_ttl_s=settings.s3.presign_ttl_s,
        tokens=tokens,
    )
    app.on_cleanup.append(lambda _app: asyncio.to_thread(store.close))
    if mount is not None:
        mount(app, settings)
    raise_open_files_limit()
    asyncio.run(_serve(app, settings))
    return 0


async def _serve(app: web.Application, settings: Settings) -> None:
    # keepalive_timeout also closes a connection that never completes a request's headers.
    runner = web.AppRunner(
        app, handle_signals=False, keepalive_timeout=settings.http_idle_timeout_s
    )
    await runner.setup()
    listener = await listen(
        runner, settings.api_host, settings.api_port, role="api", settings=("api_host", "api_port")
    )
    stop = asyncio.Event()
    log.info("api_listening", host=settings.api_host, port=settings.api_port)
    try:
        with stop_on_signals(stop.set, reload=app[TOKENS].reload):
            await stop.wait()
    finally:
        listener.close()
        await runner.cleanup()


__all__ = [
    "CLOCK",
    "OWN_AUTH",
    "PRESIGN_TTL",
    "S3",
    "STORE",
    "TOKENS",
    "Mount",
    "check_token",
    "create_app",
    "main",
]
