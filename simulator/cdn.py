"""The fake WhatsApp CDN: ``GET {directPath}`` streams the media's ``.enc`` bytes.

Lookup ignores the query string (``ccb``, ``oh``, ``oe``...), as the direct
path's file part identifies the media. Expired media answer
``faults.expired_status`` (403/404/410), unknown paths 404, a scripted
redirect sends the client to ``faults.redirect_to``. The body is
streamed in chunks with ``Content-Length`` set, generated on the fly, so a
1 GiB video costs no memory; a throttled media is paced to its rate. Every
request is recorded in the call log.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from simulator._http import (
    delay_or_hang,
    error_response,
    flip_first_byte,
    record_hang,
    redirect_response,
)
from simulator.calls import Call, CallLog
from simulator.faults import Faults, Outcome
from simulator.media import DEFAULT_CHUNK, MediaLibrary, SampleMedia

LIBRARY_KEY = web.AppKey("library", MediaLibrary)
FAULTS_KEY = web.AppKey("faults", Faults)
CALLS_KEY = web.AppKey("calls", CallLog)


def cdn_app(library: MediaLibrary, faults: Faults, calls: CallLog | None = None) -> web.Application:
    """Build the CDN application.

    Args:
        library: the media it can serve.
        faults: the fault settings, read on every request.
        calls: where requests are recorded; a new log when omitted
            (reach it as ``app[CALLS_KEY]``).

    """
    app = web.Application()
    app[LIBRARY_KEY] = library
    app[FAULTS_KEY] = faults
    app[CALLS_KEY] = calls if calls is not None else CallLog()
    app.router.add_get("/{path:.*}", _serve)
    return app


async def _serve(request: web.Request) -> web.StreamResponse:
    app = request.app
    library, faults, calls = app[LIBRARY_KEY], app[FAULTS_KEY], app[CALLS_KEY]
    media = library.by_path(request.path)
    if media is None:
        calls.record(Call("cdn", None, "unknown", 404))
        return web.Response(status=404, text="Not Found")
    decision = faults.decide("cdn", media.cdn_id)
    if decision.outcome is Outcome.HANG:
        record_hang(calls, "cdn", media.cdn_id, None)
    await delay_or_hang(decision, faults.hang_s)
    if decision.outcome is Outcome.HANG:
        return web.Response(status=504, text="Gateway Timeout")
    if decision.outcome in (Outcome.ERROR, Outcome.EXPIRED, Outcome.REDIRECT):
        calls.record(Call("cdn", media.cdn_id, decision.outcome.value, decision.status))
        if decision.outcome is Outcome.REDIRECT:
            return redirect_response(decision, request)
        if decision.outcome is Outcome.EXPIRED:
            return web.Response(status=decision.status, text="URL signature expired")
        return error_response(decision, json_body=False)
    calls.record(Call("cdn", media.cdn_id, decision.outcome.value, 200))
    enc_file = library.enc_file(media)
    bytes_per_s = faults.throttle.get(media.cdn_id)
    if enc_file is not None and decision.outcome is Outcome.OK and bytes_per_s is None:
        return web.FileResponse(enc_file, headers={"Content-Type": "application/octet-stream"})
    return await _stream(request, media, decision.outcome, bytes_per_s)


async def _stream(
    request: web.Request, media: SampleMedia, outcome: Outcome, bytes_per_s: float | None
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = media.enc_length
    await response.prepare(request)
    sent = 0
    half = media.enc_length // 2
    for chunk in media.iter_enc(DEFAULT_CHUNK):
        if outcome is Outcome.CORRUPT and sent == 0:
            # fileEncSha256 and the MAC no longer match.
            chunk = flip_first_byte(chunk)
        if outcome is Outcome.TRUNCATE and sent + len(chunk) > half:
            await response.write(chunk[: half - sent])
            # Dropping the connection below Content-Length is what a reset CDN
            # connection looks like to the client.
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write(chunk)
        sent += len(chunk)
        if bytes_per_s:
            await asyncio.sleep(len(chunk) / bytes_per_s)
    await response.write_eof()
    return response


__all__ = ["CALLS_KEY", "FAULTS_KEY", "LIBRARY_KEY", "cdn_app"]
