"""Dead letters: the ``dlq list`` table with filters, a detail view, redrive and dismiss.

Actions take a selection (ticked rows, or "everything the filter shows") and
first answer with a confirmation page that says how many records they will
touch and which ones the redrive-loop guard holds back; only the confirmed
second POST writes to Kafka, through the same functions as ``dlq redrive``
and ``dlq dismiss``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.errors import MediaflowError
from mediaflow.kafka.topics import load_layout
from mediaflow.ops import dismiss, dlq, redrive
from mediaflow.ops._output import to_json
from mediaflow.ops.letters import LetterState, letter_states
from mediaflow.ops.ui.render import page
from mediaflow.ops.ui.security import client_of

SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)
SHOWN = 200
"""Rows on one page: the newest of the selection."""
FILTERS = ("kind", "stage", "client", "instance", "state", "since", "until")
OPERATOR = "dashboard"


@dataclass(frozen=True, slots=True)
class Letter:
    """A dead letter with its state, as the pages show it."""

    view: dlq.DeadLetterView
    state: str


class BadFilter(ValueError):
    """A filter value the page cannot use (shown to the user, never a 500)."""


def selection(params: Mapping[str, Any]) -> tuple[dlq.DlqFilter, str | None]:
    """The filter and state a query string or a form asks for (pure).

    Raises:
        BadFilter: a time that does not parse or an unknown state.
    """
    values = {k: str(params.get(k) or "").strip() or None for k in FILTERS}
    try:
        since = dlq.parse_time(values["since"]) if values["since"] else None
        until = dlq.parse_time(values["until"]) if values["until"] else None
    except ValueError as exc:
        raise BadFilter("since/until: an ISO-8601 time or epoch milliseconds") from exc
    state = values["state"]
    if state is not None and state not in {s.value for s in LetterState}:
        raise BadFilter(f"unknown state {state!r}")
    ids = frozenset(str(v) for v in _all(params, "id"))
    chosen = dlq.DlqFilter(
        ids=ids,
        client=values["client"],
        instance=values["instance"],
        stage=values["stage"],
        kind=values["kind"],
        since=since,
        until=until,
    )
    return chosen, state


def _all(params: Mapping[str, Any], key: str) -> list[Any]:
    getall = getattr(params, "getall", None)
    return list(getall(key, [])) if getall else []


def read(
    settings: Settings, chosen: dlq.DlqFilter, state: str | None, own: str | None
) -> list[Letter]:
    """The selected dead letters with their states, oldest first (blocking).

    ``own``: the client a session is limited to (``None``: every client). Its
    letters only are read, whatever the filter or the ticked ids ask for, so
    listings, details, counts and actions never reach another client's.
    """
    views = dlq.read_dead_letters(settings, load_layout(settings.kafka), AvroCodec())
    views = [v for v in views if chosen.matches(v) and (own is None or v.client_id == own)]
    states = letter_states(settings, views)
    return [Letter(v, states[v.id].value) for v in views if state is None or states[v.id] == state]


async def list_letters(request: web.Request) -> web.Response:
    """``GET /ui/dead-letters``."""
    try:
        chosen, state = selection(request.query)
    except BadFilter as exc:
        return page(request, "letters.html", status=422, error=str(exc), letters=[], query={})
    try:
        letters = await asyncio.to_thread(
            read, request.app[SETTINGS], chosen, state, client_of(request)
        )
    except MediaflowError as exc:
        return page(request, "letters.html", status=503, error=exc.message, letters=[], query={})
    newest = sorted(letters, key=lambda letter: letter.view.when or dlq.EPOCH, reverse=True)[:SHOWN]
    return page(
        request,
        "letters.html",
        letters=newest,
        total=len(letters),
        query={k: request.query.get(k, "") for k in FILTERS},
        states=[s.value for s in LetterState],
    )


async def show_letter(request: web.Request) -> web.Response:
    """``GET /ui/dead-letters/{id}``: every header and the decoded record (no secret)."""
    wanted = request.match_info["id"]
    try:
        found = await asyncio.to_thread(
            read,
            request.app[SETTINGS],
            dlq.DlqFilter(ids=frozenset({wanted})),
            None,
            client_of(request),
        )
    except MediaflowError as exc:
        raise web.HTTPServiceUnavailable(text=exc.message) from exc
    if not found:
        raise web.HTTPNotFound(text=f"no dead letter {wanted}")
    letter = found[0]
    detail = letter.view.detail()
    # The decoded record as `dlq show --json` prints it (times as ISO); escaped by the template.
    value = None if detail["value"] is None else to_json(detail["value"])
    return page(request, "letter.html", letter=letter, detail=detail, value=value)


async def act(request: web.Request) -> web.Response:
    """``POST /ui/dead-letters/action``: confirm first, then redrive or dismiss."""
    try:
        return await _act(request)
    except MediaflowError as exc:
        return page(request, "result.html", status=503, result=f"failed: {exc.message}")


async def _act(request: web.Request) -> web.Response:
    form = await request.post()
    action = form.get("action")
    if action not in ("redrive", "dismiss"):
        raise web.HTTPBadRequest(text="action must be redrive or dismiss")
    try:
        chosen, state = selection(form)
    except BadFilter as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    if chosen == dlq.DlqFilter() and form.get("scope") != "filter":
        raise web.HTTPBadRequest(text="select dead letters (tick rows) or act on the filter")
    settings = request.app[SETTINGS]
    if not chosen.ids and state is None:
        state = LetterState.OPEN.value  # a filter acts on what is still open
    letters = await asyncio.to_thread(read, settings, chosen, state, client_of(request))
    views = [letter.view for letter in letters]
    if action == "redrive":
        # As `dlq redrive`: a letter too large to keep its value is sent with its original.
        views = await asyncio.to_thread(redrive.with_originals, settings, views)
    layout = load_layout(settings.kafka)
    plan = redrive.plan_redrive(views, layout, operator=OPERATOR)
    count = len(plan.items) if action == "redrive" else len(views)
    fields = [(k, str(v)) for k, v in form.items() if k not in ("csrf", "confirmed", "expected")]
    changed = form.get("confirmed") == "yes" and form.get("expected") != str(count)
    if form.get("confirmed") != "yes" or changed:
        # The count confirmed is the count acted on: a selection that changed in
        # between (new dead letters matching the filter) is asked about again.
        return page(
            request,
            "confirm.html",
            action=action,
            count=count,
            changed=changed,
            looped=[v.id for v in plan.refused if v.redriven_before],
            fields=[*fields, ("expected", str(count))],
        )
    if action == "redrive":
        done = await asyncio.to_thread(redrive.execute_redrive, settings, layout, AvroCodec(), plan)
        result = f"redrive {plan.redrive_id}: sent {done} record(s)"
    else:
        events = {}
        for view in views:
            event = dismiss.dismissed_event(view, OPERATOR, "dismissed on the dashboard")
            if event is not None:
                events.setdefault(event.media_id, event)
        done = await asyncio.to_thread(
            dismiss.execute_dismiss, settings, layout, AvroCodec(), list(events.values())
        )
        result = f"dismissed {done} media"
    refused = len(plan.refused) if action == "redrive" else 0
    return page(request, "result.html", result=result, refused=refused)


__all__ = ["SETTINGS", "BadFilter", "Letter", "act", "list_letters", "selection", "show_letter"]
