"""The fake W-API: ``POST /v1/message/download-media`` and the file links it hands out.

Contract (whatsapp-media.md section 2)::

    POST /v1/message/download-media?instanceId=<id>
    Authorization: Bearer <token of that instance>
    {"mediaKey": "...", "directPath": "...", "type": "image", "mimetype": "image/jpeg"}

Answers, in order of precedence:

* missing or wrong bearer token for the instance -> 401 ``{"error": true, ...}``;
* body not JSON or missing fields -> 400 ``{"error": true, ...}``;
* fault decision (script, expiry, hang, random 5xx/429, a random
  ``{"error": true}`` with ``faults.provider_error_message``, a redirect to
  ``faults.redirect_to``);
* media unknown, or the mediaKey does not match it ->
  ``faults.wapi_error_status`` (200 by default) with ``{"error": true, "message": ...}``;
* a scripted ``no_link`` -> ``{"error": false}`` and no ``fileLink``;
* success -> ``{"error": false, "fileLink": "<public base>/files/<cdn id>"}``.

``GET /files/<cdn id>`` streams the decrypted plaintext (no auth, like a
pre-signed link); its faults are the ``files`` target's (errors, 404/410,
redirects, ``corrupt``: one byte flipped). Every request is recorded in the
call log.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from aiohttp import web

from simulator._http import (
    delay_or_hang,
    error_response,
    flip_first_byte,
    record_hang,
    redirect_response,
)
from simulator.calls import Call, CallLog
from simulator.faults import Decision, Faults, Outcome
from simulator.media import DEFAULT_CHUNK, MediaLibrary

LIBRARY_KEY = web.AppKey("library", MediaLibrary)
FAULTS_KEY = web.AppKey("faults", Faults)
CALLS_KEY = web.AppKey("calls", CallLog)
TOKENS_KEY = web.AppKey("tokens", Mapping)
BASE_URL_KEY = web.AppKey("public_base_url", str)

DOWNLOAD_PATH = "/v1/message/download-media"
_REQUIRED = ("mediaKey", "directPath", "type", "mimetype")


def wapi_app(
    library: MediaLibrary,
    tokens: Mapping[str, str],
    faults: Faults,
    public_base_url: str | None = None,
    calls: CallLog | None = None,
) -> web.Application:
    """Build the W-API application.

    Args:
        library: the media it knows.
        tokens: instance id -> bearer token; read on every request, so a
            mutable dict can gain instances mid-run.
        faults: the fault settings, read on every request.
        public_base_url: scheme and host put in ``fileLink``; when omitted,
            the origin the request came to (right for loopback tests).
        calls: where requests are recorded; a new log when omitted.

    """
    app = web.Application()
    app[LIBRARY_KEY] = library
    app[FAULTS_KEY] = faults
    app[CALLS_KEY] = calls if calls is not None else CallLog()
    app[TOKENS_KEY] = tokens
    app[BASE_URL_KEY] = public_base_url or ""
    app.router.add_post(DOWNLOAD_PATH, _download_media)
    app.router.add_get("/files/{media_id}", _file)
    return app


def _authorized(request: web.Request, instance_id: str) -> bool:
    expected = request.app[TOKENS_KEY].get(instance_id)
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    return (
        bool(expected)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(presented.strip().encode(), str(expected).encode())
    )


def _fail(status: int, message: str) -> web.Response:
    return web.json_response({"error": True, "message": message}, status=status)


async def _download_media(request: web.Request) -> web.StreamResponse:
    app = request.app
    library, faults, calls = app[LIBRARY_KEY], app[FAULTS_KEY], app[CALLS_KEY]
    instance_id = request.query.get("instanceId", "")
    if not _authorized(request, instance_id):
        calls.record(Call("wapi", None, "unauthorized", 401, instance_id or None))
        return _fail(401, "Unauthorized: invalid token for this instance")
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or any(not isinstance(body.get(k), str) for k in _REQUIRED):
        calls.record(Call("wapi", None, "bad_request", 400, instance_id))
        return _fail(400, f"body must be JSON with {', '.join(_REQUIRED)}")
    media = library.by_path(body["directPath"])
    media_id = media.cdn_id if media is not None else None
    decision = faults.decide("wapi", media_id)
    if decision.outcome is Outcome.HANG:
        record_hang(calls, "wapi", media_id, instance_id)
    await delay_or_hang(decision, faults.hang_s)
    if decision.outcome is Outcome.HANG:
        return _fail(504, "Gateway Timeout")
    if decision.outcome is Outcome.ERROR:
        calls.record(Call("wapi", media_id, "error", decision.status, instance_id))
        return error_response(decision, json_body=True)
    if decision.outcome is Outcome.REDIRECT:
        calls.record(Call("wapi", media_id, "redirect", decision.status, instance_id))
        return redirect_response(decision, request)
    if media is None or decision.outcome in (Outcome.PROVIDER_ERROR, Outcome.EXPIRED):
        return _provider_error(calls, decision, media_id, instance_id, faults)
    if not hmac.compare_digest(body["mediaKey"].encode(), media.media_key_b64.encode()):
        status = faults.wapi_error_status
        calls.record(Call("wapi", media_id, "provider_error", status, instance_id))
        return _fail(status, "Failed to decrypt media: wrong media key")
    if decision.outcome is Outcome.NO_LINK:
        calls.record(Call("wapi", media_id, "no_link", 200, instance_id))
        return web.json_response({"error": False, "message": "media is being processed"})
    calls.record(Call("wapi", media_id, "ok", 200, instance_id))
    base = request.app[BASE_URL_KEY] or str(request.url.origin())
    return web.json_response({"error": False, "fileLink": f"{base}/files/{media.cdn_id}"})


def _provider_error(
    calls: CallLog, decision: Decision, media_id: str | None, instance_id: str, faults: Faults
) -> web.Response:
    status = faults.wapi_error_status
    calls.record(Call("wapi", media_id, "provider_error", status, instance_id))
    if media_id is None:
        return _fail(status, "Media not found")
    if decision.message is not None:
        return _fail(status, decision.message)
    return _fail(status, "Media expired or no longer available on WhatsApp servers")


async def _file(request: web.Request) -> web.StreamResponse:
    app = request.app
    library, faults, calls = app[LIBRARY_KEY], app[FAULTS_KEY], app[CALLS_KEY]
    media = library.get(request.match_info["media_id"])
    if media is None:
        calls.record(Call("files", None, "unknown", 404))
        return web.Response(status=404, text="Not Found")
    decision = faults.decide("files", media.cdn_id)
    if decision.outcome is Outcome.HANG:
        record_hang(calls, "files", media.cdn_id, None)
    await delay_or_hang(decision, faults.hang_s)
    if decision.outcome is Outcome.HANG:
        return web.Response(status=504, text="Gateway Timeout")
    if decision.outcome in (Outcome.ERROR, Outcome.EXPIRED, Outcome.REDIRECT):
        calls.record(Call("files", media.cdn_id, decision.outcome.value, decision.status))
        if decision.outcome is Outcome.REDIRECT:
            return redirect_response(decision, request)
        return error_response(decision, json_body=False)
    calls.record(Call("files", media.cdn_id, decision.outcome.value, 200))
    response = web.StreamResponse(headers={"Content-Type": media.mimetype})
    response.content_length = media.size
    await response.prepare(request)
    corrupt = decision.outcome is Outcome.CORRUPT
    for chunk in media.iter_plaintext(DEFAULT_CHUNK):
        await response.write(flip_first_byte(chunk) if corrupt else chunk)
        corrupt = False
    await response.write_eof()
    return response


__all__ = ["DOWNLOAD_PATH", "wapi_app"]
