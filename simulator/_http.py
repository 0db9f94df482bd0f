"""Answers shared by the fake W-API and the fake CDN: latency, hangs, HTTP errors, redirects."""

from __future__ import annotations

import asyncio

from aiohttp import web

from simulator.calls import Call, CallLog
from simulator.faults import Decision

_REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


async def delay_or_hang(decision: Decision, hang_s: float) -> None:
    """Wait the decided latency; for a hang, hold the request up to ``hang_s``.

    The runner cancels the handler when the client disconnects, so a hang ends
    as soon as the client gives up.
    """
    if decision.delay_s > 0:
        await asyncio.sleep(decision.delay_s)
    if decision.outcome == "hang":
        await asyncio.sleep(hang_s)


def error_response(decision: Decision, *, json_body: bool) -> web.Response:
    """Build the HTTP error of a fault; 502/504 are a proxy's HTML page, as in production."""
    status = decision.status
    reason = _REASONS.get(status, "Error")
    headers = {}
    if decision.retry_after is not None:
        headers["Retry-After"] = decision.retry_after
    if json_body and status not in (502, 504):
        return web.json_response({"error": True, "message": reason}, status=status, headers=headers)
    return web.Response(
        status=status,
        text=f"<html><body><h1>{status} {reason}</h1></body></html>",
        content_type="text/html",
        headers=headers,
    )


def redirect_response(decision: Decision, request: web.Request) -> web.Response:
    """Send the client to ``decision.location`` with the request's own path and query."""
    location = (decision.location or "").rstrip("/") + request.path_qs
    return web.Response(status=decision.status, headers={"Location": location})


def flip_first_byte(chunk: bytes) -> bytes:
    """The chunk with its first byte inverted: a body that no longer matches its hashes."""
    return bytes([chunk[0] ^ 0xFF]) + chunk[1:] if chunk else chunk


def record_hang(calls: CallLog, target: str, media_id: str | None, instance_id: str | None) -> None:
    """Record a request that was held open and never answered."""
    calls.record(Call(target, media_id, "hang", 0, instance_id))


__all__ = [
    "delay_or_hang",
    "error_response",
    "flip_first_byte",
    "record_hang",
    "redirect_response",
]
