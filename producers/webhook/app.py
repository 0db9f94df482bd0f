"""The receiver's HTTP face: webhook routes, health, readiness, metrics, error JSON.

One request, in order: method (405 unless POST) -> the secret it presents,
from its head alone (401 unless some tenant of the endpoint has it; a body
still arriving is not waited for) -> declared size (413 before reading) ->
content type (415) -> content coding (415 unless gzip, deflate or none) ->
``100 Continue`` if the client waits for it -> body read and inflated with a
running size limit (413) and a time limit (408) -> JSON (400 with the
position) -> routing fields (422 naming the field) -> the secret is the named
instance's (401) -> envelope -> Kafka, awaited until the broker acknowledges
-> 200. A broker that cannot take the record gives 503 with ``Retry-After`` so
the provider retries; no request is answered 200 before its record is on Kafka.

At about 400 lines it stays one module: it is that sequence, read top to
bottom (the body, budget and coding steps live in their own modules).

It is an aiohttp ``web.Application`` (:func:`build_app`): one route per
provider, one per page, and a last one that answers 404 for any other path.
``Expect: 100-continue`` goes through aiohttp's expect handler of the webhook
routes, which sends ``100 Continue`` only once the head passes every check.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import HttpVersion11, hdrs, web

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.errors import TransientError
from mediaflow.events import Provider, WebhookReceived
from mediaflow.kafka.topics import load_layout
from mediaflow.logging import get_logger
from mediaflow.producers.webhook import metrics
from mediaflow.producers.webhook.auth import (
    TenantSource,
    authenticate,
    presented_token,
    unauthorized,
)
from mediaflow.producers.webhook.body import read_body
from mediaflow.producers.webhook.budget import BodyBudget
from mediaflow.producers.webhook.coding import Decoder, decoder_for
from mediaflow.producers.webhook.envelope import build_record
from mediaflow.producers.webhook.producer import AsyncProducer
from mediaflow.producers.webhook.validation import (
    Rejected,
    check_content_type,
    check_declared_length,
    client_gone,
    envelope_fields,
    method_not_allowed,
    no_such_path,
    parse_json,
    wants_continue,
)
from mediaflow.serving import RETRY_AFTER_S

log = get_logger("mediaflow.webhook")

Page = Callable[[], Awaitable[web.StreamResponse]]


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


GAUGE_INTERVAL_S = 1.0
"""How often ``serve()`` samples the in-flight gauges (:meth:`Endpoints.sample_gauges`)."""

_JSON_HEADERS = {hdrs.CONTENT_TYPE: "application/json"}
"""The accepted answer's headers, made once."""


@dataclass(frozen=True, slots=True)
class Receiver:
    """What the routes need: tenants, the producer, the codec, where to write, and limits."""

    tenants: TenantSource
    producer: AsyncProducer
    codec: AvroCodec
    topic: str
    max_body_bytes: int
    body_timeout_s: float
    budget: BodyBudget
    recorder: metrics.Recorder

    @classmethod
    def from_settings(
        cls, settings: Settings, *, tenants: TenantSource, producer: AsyncProducer
    ) -> Receiver:
        """The receiver as ``settings`` configure it (topic, limits), around these collaborators."""
        return cls(
            tenants=tenants,
            producer=producer,
            codec=AvroCodec(),
            topic=load_layout(settings.kafka).webhooks,
            max_body_bytes=settings.webhook_max_body_bytes,
            body_timeout_s=settings.webhook_body_timeout_s,
            budget=BodyBudget(settings.webhook_body_budget_bytes),
            recorder=metrics.Recorder(),
        )

    def check_head(
        self, request: web.BaseRequest, provider: Provider
    ) -> tuple[str | None, Decoder]:
        """Check what the request's head alone can tell, before any of its body is read.

        Returns:
            The secret it presents and the decoder of its ``Content-Encoding``.

        Raises:
            Rejected: 405, 401 (closing the connection when a body is still
                arriving), 413 on the declared size, 415.

        """
        if request.method != "POST":
            raise method_not_allowed(request.method, request.path, ["POST"])
        presented = presented_token(provider, request.query, request.headers)
        if not self.tenants.known.admits(provider, presented):
            # Decided on the head alone: none of the body is read, let alone inflated.
            raise unauthorized(hang_up=not request.content.is_eof())
        check_declared_length(request.content_length, self.max_body_bytes)
        check_content_type(request.headers.get(hdrs.CONTENT_TYPE))
        return presented, decoder_for(",".join(request.headers.getall(hdrs.CONTENT_ENCODING, ())))

    def continue_if_acceptable(self, request: web.BaseRequest, provider: Provider) -> None:
        """Answer ``Expect: 100-continue`` once the head passed every check.

        Sent only then, so a body refused on its head (too large, not JSON)
        never travels at all.

        Raises:
            Rejected: what :meth:`check_head` refuses; 417 for an expectation
                other than ``100-continue``; 499 when the client hung up already.

        """
        self.check_head(request, provider)
        if request.version == HttpVersion11 and wants_continue(request.headers.get(hdrs.EXPECT)):
            transport = request.transport
            if transport is None or transport.is_closing():
                raise client_gone()
            transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    async def accept(self, request: web.BaseRequest, provider: Provider) -> web.Response:
        """Validate, authenticate and durably record one webhook.

        Raises:
            Rejected: the request is refused (4xx), or the in-flight budget
                cannot hold its body now (503).
            TransientError: Kafka cannot take it now (503).

        """
        received_at = datetime.now(UTC)
        presented, decoder = self.check_head(request, provider)
        # The body's share of the budget is held until Kafka has it, or it is refused.
        with self.budget.lease() as lease:
            body = await read_body(
                request, decoder, lease, limit=self.max_body_bytes, timeout_s=self.body_timeout_s
            )
            return await self._record(request, provider, presented, body, received_at)

    async def _record(
        self,
        request: web.BaseRequest,
        provider: Provider,
        presented: str | None,
        body: bytes,
        received_at: datetime,
    ) -> web.Response:
        fields = envelope_fields(provider, parse_json(body))
        tenant = authenticate(self.tenants.registry, provider, fields.instance_id, presented)
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
        self.recorder.accepted(provider, len(body), time.perf_counter() - started)
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
            headers=_JSON_HEADERS,
        )


def error_response(status: int, error: str, detail: str) -> web.Response:
    """Build the JSON answer every refusal carries: ``{"error": ..., "detail": ...}``."""
    response = web.json_response({"error": error, "detail": detail}, status=status)
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


class Endpoints:
    """Every path of the receiver: the handlers :func:`build_app` routes to.

    Example::

        endpoints = Endpoints(receiver)
        runner = web.AppRunner(build_app(endpoints))

    Every outcome becomes JSON, and webhook answers are counted by provider
    and status. A client can cause 4xx only, or 503 when the receiver is too
    busy for it: :class:`Rejected` and aiohttp's own HTTP errors. Anything
    else is our bug: logged with its traceback, answered 500 without details.

    Attributes:
        in_flight: the webhooks being handled, which shutdown waits for.

    """

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.in_flight = InFlight()
        self.webhook_paths = {f"/webhooks/{provider.value}": provider for provider in Provider}
        self.pages: dict[str, Page] = {
            "/healthz": self._healthz,
            "/readyz": self._readyz,
            "/metrics": self._metrics,
        }

    async def webhook(self, request: web.BaseRequest, provider: Provider) -> web.StreamResponse:
        """Answer a webhook of ``provider``."""
        self.in_flight.enter()
        try:
            response = await _answer(request, self.receiver.accept(request, provider))
        finally:
            self.in_flight.leave()
        self.receiver.recorder.answered(provider, response.status)
        return response

    async def expect(
        self, request: web.BaseRequest, provider: Provider
    ) -> web.StreamResponse | None:
        """Answer a webhook's ``Expect`` header: ``None`` (go on) or the refusal."""
        try:
            self.receiver.continue_if_acceptable(request, provider)
        except Rejected as exc:
            response = _refusal(request, exc)
            self.receiver.recorder.answered(provider, response.status)
            return response
        return None

    async def page(self, request: web.BaseRequest) -> web.StreamResponse:
        """Answer ``GET`` or ``HEAD`` of a page, 404 for a path nothing is served at."""
        return await _answer(request, self._page(request))

    async def _page(self, request: web.BaseRequest) -> web.StreamResponse:
        page = self.pages.get(request.path)
        if page is None:
            raise no_such_path(request.path, self.webhook_paths)
        if request.method not in ("GET", "HEAD"):
            raise method_not_allowed(request.method, request.path, ["GET", "HEAD"])
        return await page()

    async def _healthz(self) -> web.Response:
        return web.json_response({"status": "alive"})

    async def _readyz(self) -> web.Response:
        reason = await self.receiver.producer.unready_reason(self.receiver.topic)
        if reason is None:
            return web.json_response({"status": "ready"})
        return error_response(503, "not_ready", reason)

    def sample_gauges(self) -> None:
        """Set the in-flight gauges to what they count now.

        Sampled (at each scrape, and every :data:`GAUGE_INTERVAL_S` by
        ``serve()``, for the workers a scrape does not reach) rather than
        updated on each request's way in and out.
        """
        metrics.IN_FLIGHT.set(self.in_flight.count)
        metrics.BODY_BYTES_IN_FLIGHT.set(self.receiver.budget.used)

    async def _metrics(self) -> web.Response:
        self.sample_gauges()
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": metrics.CONTENT_TYPE_LATEST}
        )


def build_app(endpoints: Endpoints, **options: Any) -> web.Application:
    """Return the receiver's aiohttp application, routed to ``endpoints``.

    Args:
        endpoints: the handlers.
        options: more keyword arguments for the server of every runner of the
            app (aiohttp's ``handler_args``), e.g. ``keepalive_timeout``.

    """
    app = web.Application(
        handler_args={
            # aiohttp's access log prints the query string, where the token may be.
            "access_log": None,
            # Bodies are inflated by the handler, once the caller is known and a
            # piece at a time (mediaflow.producers.webhook.coding).
            "auto_decompress": False,
            # A body nobody will read (refused, stalled, broken) is not read to
            # its end, up to 10 s by default, only to be discarded: the
            # connection is closed once the answer is out.
            "lingering_time": 0,
            **options,
        }
    )
    for path, provider in endpoints.webhook_paths.items():
        app.router.add_route(
            "*",
            path,
            functools.partial(endpoints.webhook, provider=provider),
            expect_handler=functools.partial(endpoints.expect, provider=provider),
        )
    # Pages ignore Expect: none of them reads a body.
    for path in endpoints.pages:
        app.router.add_route("*", path, endpoints.page, expect_handler=_go_on)
    app.router.add_route("*", "/{path:.*}", endpoints.page, expect_handler=_go_on)
    return app


async def _go_on(_request: web.BaseRequest) -> None:
    return None


async def _answer(
    request: web.BaseRequest, outcome: Awaitable[web.StreamResponse]
) -> web.StreamResponse:
    try:
        return await outcome
    except Rejected as exc:
        return _refusal(request, exc)
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


def _refusal(request: web.BaseRequest, exc: Rejected) -> web.Response:
    log.info("webhook_rejected", path=request.path, status=exc.status, error=exc.error)
    response = error_response(exc.status, exc.error, exc.message)
    response.headers.update(exc.headers)
    if exc.hang_up:
        # "Connection: close", and aiohttp closes it once the answer is out
        # (lingering_time=0: the rest of the body is not read).
        response.force_close()
    return response


def _slug(reason: str) -> str:
    return reason.lower().replace(" ", "_")


__all__ = [
    "GAUGE_INTERVAL_S",
    "Endpoints",
    "InFlight",
    "Receiver",
    "build_app",
    "error_response",
]
