"""Media: search the projection, and a detail page with the object and a preview.

The search reads the API's own query parameters (``parse_query``: client,
instance, status, type, date range), plus a message id or media id. A media
id is looked up directly; a message id is matched over the filtered listing,
reading at most :data:`MESSAGE_SCAN_ROWS` rows (narrow by client or date for
older messages). Previews and players load the object through a short-lived
presigned link whose ``Content-Type`` comes from the allowlist of
:mod:`mediaflow.stored_content` and whose ``Content-Disposition`` is
``attachment``, exactly as the API's download link.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from aiohttp import web

from mediaflow.errors import MediaflowError
from mediaflow.kafka.topics import load_layout
from mediaflow.media_state import MediaRow, MediaStatus
from mediaflow.ops.history import MAX_SCANNED, History, media_history
from mediaflow.ops.ui.letters import SETTINGS
from mediaflow.ops.ui.render import page
from mediaflow.ops.ui.security import SCOPE
from mediaflow.processors.projection.api import PRESIGN_TTL, S3, STORE
from mediaflow.processors.projection.tokens import Scope
from mediaflow.processors.projection.views import Invalid, iso, parse_query
from mediaflow.storage.objects import download_url
from mediaflow.storage.projection import ProjectionStore
from mediaflow.stored_content import attachment, content_type

QUERY_KEYS = ("client_id", "instance_id", "status", "media_type", "since", "until")
MESSAGE_SCAN_ROWS = 5000
SHOWN = 100
HISTORY_LIMIT = MAX_SCANNED
"""Records read at most per topic for a detail page's history."""
PREVIEW = {"image": "img", "sticker": "img", "audio": "audio", "video": "video"}


def search(
    store: ProjectionStore, params: dict[str, str], wanted_id: str, scope: Scope
) -> tuple[list[MediaRow], bool]:
    """Rows matching the filters (and the id, if any); ``True`` when the scan was cut (blocking).

    A client's ``scope`` finds only its own media: another client asked for
    matches nothing, as in the API.

    Raises:
        Invalid: a filter the API would answer 422.
    """
    if scope.client_id is not None:
        if params.get("client_id", scope.client_id) != scope.client_id:
            return [], False
        params = {**params, "client_id": scope.client_id}
    if wanted_id:
        row = store.get(wanted_id)
        if row is not None and scope.sees(row.client_id):
            return [row], False
    query = parse_query({**params, "limit": "500"}, [*params, "limit"])
    rows: list[MediaRow] = []
    scanned = 0
    while True:
        found = store.list(query)
        scanned += len(found.rows)
        rows += [r for r in found.rows if not wanted_id or r.message_id == wanted_id]
        if found.next_after is None or len(rows) >= SHOWN:
            return rows[:SHOWN], False
        if scanned >= MESSAGE_SCAN_ROWS or not wanted_id:
            return rows[:SHOWN], bool(wanted_id)
        query = dataclasses.replace(query, after=found.next_after)


async def search_page(request: web.Request) -> web.Response:
    """``GET /ui/media``."""
    params = {k: request.query[k].strip() for k in QUERY_KEYS if request.query.get(k, "").strip()}
    wanted_id = request.query.get("id", "").strip()
    form = {**{k: request.query.get(k, "") for k in QUERY_KEYS}, "id": wanted_id}
    statuses = [s.value for s in MediaStatus]
    try:
        rows, cut = await asyncio.to_thread(
            search, request.config_dict[STORE], params, wanted_id, request[SCOPE]
        )
    except Invalid as exc:
        return page(
            request, "media.html", status=422, error=str(exc), rows=[], form=form, statuses=statuses
        )
    return page(
        request,
        "media.html",
        rows=[_summary(r) for r in rows],
        cut=cut,
        form=form,
        statuses=statuses,
    )


def _summary(row: MediaRow) -> dict[str, Any]:
    return {
        "media_id": row.media_id,
        "status": row.status,
        "client_id": row.client_id,
        "instance_id": row.instance_id,
        "message_id": row.message_id,
        "media_type": row.media_type,
        "file_name": row.file_name,
        "created_at": iso(row.created_at),
    }


def preview_link(request: web.Request, row: MediaRow) -> str | None:
    """A presigned link for a stored media (``None`` otherwise)."""
    if row.status != MediaStatus.STORED or not row.bucket or not row.object_key:
        return None
    return download_url(
        request.config_dict[S3],
        row.bucket,
        row.object_key,
        content_type=content_type(row.media_type, row.mimetype),
        disposition=attachment(
            row.media_type, row.mimetype, row.file_name, fallback=row.message_id or row.media_id
        ),
        ttl_s=request.config_dict[PRESIGN_TTL],
    )


async def detail_page(request: web.Request) -> web.Response:
    """``GET /ui/media/{media_id}``: state, object, history (from the topics) and preview."""
    media_id = request.match_info["media_id"]
    row = (
        None
        if "\x00" in media_id
        else await asyncio.to_thread(request.config_dict[STORE].get, media_id)
    )
    if row is None or not request[SCOPE].sees(row.client_id):  # another client's: unknown
        raise web.HTTPNotFound(text=f"no media {media_id!r} in the projection")
    settings = request.app[SETTINGS]
    history: History | None = None
    unavailable = None
    try:
        history = await asyncio.to_thread(
            media_history, settings, load_layout(settings.kafka), row, limit=HISTORY_LIMIT
        )
    except MediaflowError as exc:
        # The page still shows the row and the object when Kafka is away.
        unavailable = exc.message
    link = preview_link(request, row)
    return page(
        request,
        "media_detail.html",
        row=row,
        history=history,
        history_error=unavailable,
        limit=HISTORY_LIMIT,
        link=link,
        player=PREVIEW.get(row.media_type or "") if link else None,
    )


__all__ = ["detail_page", "preview_link", "search", "search_page"]
