"""The webhook view: authenticate, parse, enqueue one Celery task per media, answer 200.

``python -m bench.baselines.celery.web PORT``. The Django view a team would
write, on aiohttp so it runs without a Django project: nothing is downloaded
inline any more. It answers 200 only once Redis took every task of the
webhook (500 when it did not), 400 to a body that is not JSON, 401 to an
unknown instance or a wrong token. The media found are mediaflow's
(:func:`mediaflow.providers.parse_webhook`), so both systems see the same ones;
a media that can never be downloaded (a broken key) is only logged.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import sys

from aiohttp import web
from kombu.exceptions import OperationalError

from bench.baselines.celery.media import to_message
from bench.baselines.celery.tasks import store_media
from mediaflow.config import Settings
from mediaflow.errors import MediaflowError
from mediaflow.providers import parse_webhook, read_envelope
from mediaflow.tenants import TenantRegistry

log = logging.getLogger("baseline.web")
REGISTRY = web.AppKey("registry", TenantRegistry)


async def receive(request: web.Request) -> web.Response:
    """One webhook: 200 once every media of it is queued."""
    provider = request.match_info["provider"]
    try:
        payload = json.loads(await request.read())
        envelope = read_envelope(provider, payload)
    except (ValueError, MediaflowError):
        return web.json_response({"error": "the body is not a webhook"}, status=400)
    tenant = request.app[REGISTRY].get(envelope.instance_id)
    token = request.query.get("token", "")
    if tenant is None or not hmac.compare_digest(
        token.encode(), tenant.webhook_secret.reveal().encode()
    ):
        return web.json_response({"error": "unknown instance or wrong token"}, status=401)
    try:
        found = parse_webhook(
            provider, payload, client_id=tenant.client_id, instance_id=envelope.instance_id
        )
    except MediaflowError:
        return web.json_response({"error": "the body is not a webhook"}, status=400)
    for problem in found.problems:
        log.warning("media cannot be downloaded: %s", problem.error)
    try:
        for media in found.media:
            # apply_async blocks on the broker: keep it off the event loop, as a
            # WSGI worker thread would.
            await asyncio.to_thread(store_media.delay, to_message(media))
    except OperationalError:
        return web.json_response({"error": "the queue is unavailable"}, status=500)
    return web.json_response({"queued": len(found.media)})


async def ready(_request: web.Request) -> web.Response:
    """Readiness: the view is up."""
    return web.json_response({"ready": True})


def make_app(registry: TenantRegistry) -> web.Application:
    """The view's application."""
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[REGISTRY] = registry
    app.router.add_post("/webhooks/{provider}", receive)
    app.router.add_get("/readyz", ready)
    return app


def main(argv: list[str]) -> None:
    """Serve the view on 127.0.0.1:PORT until SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
    settings = Settings.from_env()
    registry = TenantRegistry.load(settings.tenants_file)
    web.run_app(make_app(registry), host="127.0.0.1", port=int(argv[0]), access_log=None)


if __name__ == "__main__":
    main(sys.argv[1:])
