"""``mediaflow serve webhooks``: run one receiver until SIGTERM.

``--workers N`` runs N of them on one port (``SO_REUSEPORT``: the kernel
spreads connections across them) under :mod:`mediaflow.supervisor`, so
ingestion uses every core; more hosts behind a load balancer scale the same
way. Each receiver has its own producer.

Signals: SIGTERM / SIGINT stop a receiver gracefully; SIGHUP reloads the
tenant registry in place. The supervisor of N receivers passes all three on.
"""

from __future__ import annotations

import argparse
import asyncio
import gc

from aiohttp import web

from mediaflow.config import Settings
from mediaflow.kafka.topics import load_layout
from mediaflow.logging import get_logger
from mediaflow.producers.webhook.app import GAUGE_INTERVAL_S, Endpoints, Receiver, build_app
from mediaflow.producers.webhook.auth import TenantSource
from mediaflow.producers.webhook.producer import AsyncProducer
from mediaflow.serving import ConnectionLimit, listen, raise_open_files_limit
from mediaflow.signals import stop_on_signals
from mediaflow.tenants import TenantRegistry

log = get_logger("mediaflow.webhook")

DRAIN_MARGIN_S = 5.0
"""Extra time in-flight requests get past the delivery timeout during shutdown."""


def main(_args: argparse.Namespace, settings: Settings) -> int:
    """Run one webhook receiver in the foreground; return the exit code.

    Raises:
        ConfigError: the tenant registry or the topics file is missing or invalid.

    """
    raise_open_files_limit()
    return asyncio.run(serve(settings))


def check_config(settings: Settings) -> None:
    """Refuse, once, what every receiver would refuse (before N of them are started).

    What only a running receiver can find out (a Kafka property librdkafka
    refuses, a port in use) ends it with EXIT_CONFIG, which stops them all.

    Raises:
        ConfigError: the tenant registry or the topics file is missing or invalid.

    """
    TenantRegistry.load(settings.tenants_file)
    load_layout(settings.kafka)


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> int:
    """Serve until ``stop`` is set or SIGTERM/SIGINT arrives, then shut down cleanly.

    Shutdown order:

    1. stop listening, so no new request is accepted;
    2. let in-flight requests finish, bodies still uploading included (one that
       stops arriving is answered 408 after the body timeout): each then waits for
       its delivery report, which comes within the delivery timeout (stragglers
       are cancelled after the delivery timeout plus a margin);
    3. flush the producer, so nothing queued is lost;
    4. return 0.

    Args:
        settings: the effective settings.
        stop: an event that ends the server (tests); signals set it too.

    """
    stop = stop or asyncio.Event()
    tenants = TenantSource(settings.tenants_file)
    producer = AsyncProducer.from_settings(settings)
    receiver = Receiver.from_settings(settings, tenants=tenants, producer=producer)
    topic = receiver.topic
    endpoints = Endpoints(receiver)
    drain_timeout_s = settings.webhook_delivery_timeout_s + DRAIN_MARGIN_S
    runner = web.AppRunner(
        # keepalive_timeout also closes a connection that never completes a request's headers.
        build_app(endpoints, keepalive_timeout=settings.http_idle_timeout_s),
        handle_signals=False,
        shutdown_timeout=DRAIN_MARGIN_S,
    )
    await runner.setup()
    listener = await listen(
        runner,
        settings.webhook_host,
        settings.webhook_port,
        role="webhooks",
        settings=("webhook_host", "webhook_port"),
        reuse_port=True,
        max_connections=ConnectionLimit(
            settings.webhook_max_connections, "webhook_max_connections"
        ),
    )
    # Not awaited: a broker down at start must not delay listening (webhooks get 503).
    first_check = asyncio.create_task(producer.unready_reason(topic))
    sampler = asyncio.create_task(_sample_gauges(endpoints))
    log.info(
        "webhooks_listening",
        host=settings.webhook_host,
        port=settings.webhook_port,
        topic=topic,
        tenants=len(tenants.registry.tenants),
    )
    # What exists now lives as long as the server: out of the garbage collector's
    # sight, a full collection no longer walks every module loaded, a pause every
    # request in flight would wait out (bench/README.md has its length).
    gc.freeze()
    try:
        with stop_on_signals(stop.set, reload=tenants.reload):
            await stop.wait()
    finally:
        gc.unfreeze()
        log.info("webhooks_stopping")
        first_check.cancel()
        sampler.cancel()
        # Stop listening ourselves and wait for requests in flight: aiohttp's own
        # shutdown stops reading request bodies still arriving, which would cut off
        # a webhook that was mid-upload when the signal came.
        listener.close()
        await asyncio.sleep(0)  # let connections accepted just before start their request
        drained = await endpoints.in_flight.drained(drain_timeout_s)
        await runner.cleanup()
        undelivered = await producer.close()
    log.info("webhooks_stopped", drained=drained, undelivered=undelivered)
    return 0


async def _sample_gauges(endpoints: Endpoints) -> None:
    while True:
        endpoints.sample_gauges()
        await asyncio.sleep(GAUGE_INTERVAL_S)


__all__ = ["DRAIN_MARGIN_S", "check_config", "main", "serve"]
