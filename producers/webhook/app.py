"""The aiohttp application: webhook routes, health, readiness, metrics, error JSON.

One request, in order: declared size (413 before reading) -> content type
(415) -> body read with a running size limit (413) and a time limit (408) ->
JSON (400 with the position) -> routing fields (422 naming the field) -> tenant
secret (401) -> envelope -> Kafka, awaited until the broker acknowledges ->
200. A broker that cannot take the record gives 503 with ``Retry-After`` so
the provider retries; no request is answered 200 before its record is on Kafka.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mediaflow.codec import AvroCodec
from mediaflow.errors import TransientError
from mediaflow.events import Provider, WebhookReceived
from mediaflow.logging import get_logger
from mediaflow.serving import RETRY_AFTER_S
from producers.webhook import metrics
from producers.webhook.auth import TenantSource, authenticate, presented_token
from producers.webhook.envelope import build_record
from producers.webhook.producer import AsyncProducer
from producers.webhook.validation import (
    Rejected,
    body_timeout,
    check_content_type,
    check_declared_length,
    client_gone,
    envelope_fields,
    parse_json,
    too_large,
    unreadable_body,
)

log = get_logger("mediaflow.webhook")

_PROVIDER_KEY = web.RequestKey("provider", Provider)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class InFlight:
    """Counts the requests being handled, so shutdown can wait for them to finish."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        """A request started."""
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        """A request finished."""
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def drained(self, timeout_s: float) -> bool:
        """Wait until no request is in flight; return whether that happened in time."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


IN_FLIGHT_KEY = web.AppKey("in_flight", InFlight)


@dataclass(frozen=True, slots=True)
class Receiver:
    """What the routes need: tenants, the producer, the codec, where to write, and limits."""

    tenants: TenantSource
    producer: AsyncProducer
    codec: AvroCodec
    topic: str
    max_body_bytes: int
    body_timeout_s: float

    async def accept(self, request: web.Request, provider: Provider) -> web.Response:
        """Validate, authenticate and durably record one webhook.

        Raises:
            Rejected: the request is refused (4xx).
            TransientError: Kafka cannot take it now (503).

        """
        received_at = datetime.now(UTC)
        check_declared_length(request.content_length, self.max_body_bytes)
        check_content_type(request.content_type)
        body = await read_limited(request, self.max_body_bytes, self.body_timeout_s)
        fields = envelope_fields(provider, parse_json(body))
        tenant = authenticate(
            self.tenants.registry,
            provider,
            fields.instance_id,
            presented_token(provider, request.query, request.headers),
        )
        record = build_record(
            provider=provider,
            tenant=tenant,
            fields=fields,
            body=body,
            request_headers=request.headers.items(),
            received_at=received_at,
            fingerprint=self.codec.fingerprint_of(WebhookReceived),
        )
        started = time.perf_counter()
        await self.producer.send(
            self.topic, record.key, self.codec.encode(record.event), record.headers
        )
        metrics.PRODUCE_SECONDS.observe(time.perf_counter() - started)
        metrics.request_bytes(provider).inc(len(body))
        log.debug(
            "webhook_accepted",
            provider=provider.value,
            instance_id=fields.instance_id,
            event_id=record.event.event_id,
            event_type=fields.event_type,
        )
        # Built by hand: the event id is a UUID, nothing in it needs escaping.
        return web.Response(
            body=b'{"status":"accepted","event_id":"%s"}' % record.event.event_id.encode(),
            content_type="application/json",
        )


async def read_limited(request: web.Request, limit: int, timeout_s: float) -> bytes:
    """Read the body; aiohttp stops at the app's ``client_max_size`` (chunked uploads too).

    Args:
        request: the request.
        limit: the app's ``client_max_size``, named in the 413.
        timeout_s: how long the rest of the body may take to arrive. Without it a
            client that stops sending mid-body holds its connection, and a place
            among the requests shutdown waits for, forever.

    Raises:
        Rejected: 413 once more than ``limit`` bytes arrived; 408 when the body
            is not complete within ``timeout_s``; 400 when its ``Content-Encoding``
            does not decode; 499 when the client hung up first.

    """
    try:
        if request.content.is_eof():  # it came with the headers, as webhooks do: no timer
            return await request.read()
        async with asyncio.timeout(timeout_s):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large(limit) from None
    except TimeoutError:
        raise body_timeout(timeout_s) from None
    except web.RequestPayloadError as exc:
        # aiohttp wraps the parser's error, whose message says what is broken.
        raise unreadable_body(getattr(exc.__cause__, "message", str(exc))) from None
    except ConnectionResetError:
        raise client_gone() from None


def error_response(status: int, error: str, detail: str) -> web.Response:
    """Build the JSON answer every refusal carries: ``{"error": ..., "detail": ...}``."""
    response = web.json_response({"error": error, "detail": detail}, status=status)
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every outcome into JSON; count webhook answers; never leak internals.

    A client can cause 4xx only: :class:`Rejected` and aiohttp's own HTTP errors
    (404, 405, malformed requests). Anything else is our bug: logged with its
    traceback, answered 500 without details.
    """
    in_flight = request.app[IN_FLIGHT_KEY]
    in_flight.enter()
    try:
        response = await _answer(request, handler)
    finally:
        in_flight.leave()
    provider = request.get(_PROVIDER_KEY)
    if provider is not None:
        metrics.requests(provider, response.status).inc()
    return response


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Rejected as exc:
        log.info("webhook_rejected", path=request.path, status=exc.status, error=exc.error)
        response = error_response(exc.status, exc.error, exc.message)
        if exc.hang_up:
            await _answer_and_hang_up(request, response)
        return response
    except TransientError as exc:
        log.warning("webhook_not_recorded", path=request.path, reason=exc.message)
        return error_response(503, "unavailable", "the event could not be recorded; retry later")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, _slug(exc.reason), exc.text or exc.reason)
    except Exception:
        log.exception("webhook_internal_error", path=request.path)
        return error_response(500, "internal_error", "internal error; it has been logged")


async def _answer_and_hang_up(request: web.Request, response: web.StreamResponse) -> None:
    # A body stalled or broken: say "Connection: close" and hang up once the answer
    # is out. Left to itself, aiohttp would linger up to 10 s more, reading the rest
    # of the body only to discard it (or to log a broken one as its own error).
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()


def _slug(reason: str) -> str:
    return reason.lower().replace(" ", "_")


def build_app(receiver: Receiver) -> web.Application:
    """Return the application with every route of the receiver.

    Args:
        receiver: the collaborators the webhook routes use.

    """
    app = web.Application(middlewares=[errors_middleware], client_max_size=receiver.max_body_bytes)
    in_flight = app[IN_FLIGHT_KEY] = InFlight()
    # Read when scraped, rather than a locked gauge update twice per request.
    metrics.IN_FLIGHT.set_function(lambda: in_flight.count)
    for provider in Provider:
        app.router.add_post(f"/webhooks/{provider.value}", _webhook_route(receiver, provider))

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(_request: web.Request) -> web.Response:
        reason = await receiver.producer.unready_reason(receiver.topic)
        if reason is None:
            return web.json_response({"status": "ready"})
        return error_response(503, "not_ready", reason)

    async def metrics_route(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_route)
    return app


def _webhook_route(receiver: Receiver, provider: Provider) -> Handler:
    async def route(request: web.Request) -> web.Response:
        request[_PROVIDER_KEY] = provider
        return await receiver.accept(request, provider)

    return route


__all__ = [
    "IN_FLIGHT_KEY",
    "InFlight",
    "Receiver",
    "build_app",
    "error_response",
    "errors_middleware",
    "read_limited",
]
