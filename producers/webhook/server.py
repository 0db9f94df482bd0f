"""``mediaflow serve webhooks [--workers N]``: run the receiver until SIGTERM.

N worker processes listen on one port (``SO_REUSEPORT``: the kernel spreads
connections across them), so ingestion uses every core; more hosts behind a
load balancer scale the same way. Each worker has its own producer.

Signals (each worker): SIGTERM / SIGINT stop it gracefully; SIGHUP reloads the
tenant registry in place. The parent of N workers forwards all three.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import signal
import time
from types import FrameType

from aiohttp import web

from mediaflow import logging as mflog
from mediaflow.config import Settings, secret_values
from mediaflow.errors import EXIT_CONFIG, ConfigError
from mediaflow.kafka.topics import load_layout
from mediaflow.producers.webhook import metrics
from mediaflow.producers.webhook.app import GAUGE_INTERVAL_S, Endpoints, Receiver, build_app
from mediaflow.producers.webhook.auth import TenantSource
from mediaflow.producers.webhook.producer import AsyncProducer
from mediaflow.serving import ConnectionLimit, listen, raise_open_files_limit
from mediaflow.tenants import TenantRegistry

log = mflog.get_logger("mediaflow.webhook")

DRAIN_MARGIN_S = 5.0
"""Extra time in-flight requests get past the delivery timeout during shutdown."""


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Run the webhook receiver in the foreground; return the exit code.

    Args:
        args: parsed CLI arguments (``workers``: processes sharing the port).
        settings: the effective settings.

    Raises:
        ConfigError: the tenant registry or the topics file is missing or invalid.

    """
    raise_open_files_limit()  # before the workers start: they inherit it
    if args.workers == 1:
        return asyncio.run(serve(settings))
    # Every worker counts into this directory, so each one's /metrics shows them all.
    with metrics.shared_directory():
        return _supervise(settings, args.workers)


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
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, tenants.reload)
    # A worker starts with SIGHUP blocked: a reload asked for meanwhile comes now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
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
        await stop.wait()
    finally:
        gc.unfreeze()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
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


def _worker(settings: Settings) -> None:
    # A new interpreter: the log set-up the CLI did, again (secrets kept out of lines).
    mflog.configure(fmt=settings.log_format, level=settings.log_level)
    mflog.register_secrets(secret_values(settings))
    try:
        code = asyncio.run(serve(settings))
    except ConfigError as exc:  # not every UsageError: a fenced producer is worth a restart
        log.error("webhooks_worker_misconfigured", reason=exc.message)
        code = EXIT_CONFIG
    raise SystemExit(code)


def _supervise(settings: Settings, workers: int) -> int:
    """Fork ``workers`` receivers on one port; forward signals; restart a crashed one."""
    # Fail fast, once, on a bad configuration instead of restarting workers forever
    # (what only a worker can find out, such as a Kafka property librdkafka refuses,
    # ends it with EXIT_CONFIG, which stops them all).
    TenantRegistry.load(settings.tenants_file)
    load_layout(settings.kafka)
    # spawn, not fork: a new interpreter imports prometheus_client in multiprocess
    # mode (it reads PROMETHEUS_MULTIPROC_DIR once, at import); the settings are
    # handed over pickled, and the worker sets up logging from them.
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> multiprocessing.process.BaseProcess:
        process = context.Process(target=_worker, args=(settings,), name="webhooks-worker")
        # Started with SIGHUP blocked, the worker keeps a reload asked for while it
        # starts (rather than dying of it) until serve() can act on it.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
        return process

    children = [start() for _ in range(workers)]

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = stopping or signum != signal.SIGHUP
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    misconfigured = False
    while not stopping:
        time.sleep(0.2)
        for index, child in enumerate(children):
            if child.exitcode is None or stopping:
                continue
            if child.exitcode == EXIT_CONFIG:
                # Every worker has these settings: a restart would be refused the same way.
                misconfigured = True
                forward(signal.SIGTERM, None)
                break
            log.error("webhooks_worker_exited", pid=child.pid, code=child.exitcode)
            if child.pid is not None:
                metrics.worker_exited(child.pid)
            time.sleep(1)
            children[index] = start()
    codes = []
    for child in children:
        child.join()
        codes.append(child.exitcode)
    if misconfigured:
        raise ConfigError("a webhook worker's configuration was refused; see its log line above")
    return 0 if all(code == 0 for code in codes) else 1


__all__ = ["DRAIN_MARGIN_S", "main", "serve"]
