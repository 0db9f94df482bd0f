"""A webhook receiver on a test server, with a tenants file of its own."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from mediaflow.config import REPO_ROOT, Settings
from mediaflow.producers.webhook import (
    AsyncProducer,
    Endpoints,
    Receiver,
    TenantSource,
    build_app,
    serve,
)
from simulator.pipeline import free_port
from tests.support.stack import stack_env

WAPI_INSTANCE = "3B6XIW-ZTS923-GEAY6V"
WAPI_SECRET = "wapi-secret-for-webhook-tests"
EVOLUTION_INSTANCE = "loja-centro"
EVOLUTION_SECRET = "evolution-secret-for-webhook-tests"


def answers_counted(status: int) -> float:
    """How many W-API webhooks this process's receiver has answered with ``status``."""
    labels = {"provider": "wapi", "status": str(status)}
    return REGISTRY.get_sample_value("mediaflow_webhook_requests_total", labels) or 0.0


def scraped(port: int, name: str, labels: dict[str, str] | None = None) -> float:
    """The value of metric ``name`` with exactly ``labels`` on ``/metrics`` (0 if absent).

    Each call is a new connection: with several workers on one port, any one may answer.
    """
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and sample.labels == (labels or {})
    )


def serve_workers(
    settings: Settings, tenants: Path, port: int, workers: int = 2, **env: str
) -> subprocess.Popen[bytes]:
    """Start ``mediaflow serve webhooks --workers N`` on ``port`` against the test stack."""
    return subprocess.Popen(
        [sys.executable, "-m", "mediaflow", "serve", "webhooks", "--workers", str(workers)],
        env={
            **stack_env(),
            "MEDIAFLOW_TOPIC_PREFIX": settings.kafka.topic_prefix,
            "MEDIAFLOW_TOPICS_FILE": str(settings.kafka.topics_file),
            "MEDIAFLOW_TENANTS_FILE": str(tenants),
            "MEDIAFLOW_WEBHOOK_PORT": str(port),
            "MEDIAFLOW_LOG_FORMAT": "json",
            **env,
        },
        cwd=REPO_ROOT,
    )


def post_webhook(port: int, body: bytes, token: str = WAPI_SECRET) -> int:
    """POST ``body`` to ``/webhooks/wapi`` on loopback; return the status (0: no answer)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/wapi?token={token}",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def request_head(
    length: int, *, content_type: str = "application/json", expect: str | None = None
) -> bytes:
    """The head of a raw ``POST /webhooks/wapi`` (W-API secret included) declaring ``length``."""
    head = (
        f"POST /webhooks/wapi?token={WAPI_SECRET} HTTP/1.1\r\nHost: receiver\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n"
    )
    if expect is not None:
        head += f"Expect: {expect}\r\n"
    return (head + "\r\n").encode()


def write_tenants(directory: Path) -> Path:
    """Write a registry with one W-API and one Evolution tenant; secrets in files."""
    wapi = directory / "wapi.secret"
    wapi.write_text(WAPI_SECRET)
    evolution = directory / "evolution.secret"
    evolution.write_text(EVOLUTION_SECRET)
    path = directory / "tenants.toml"
    path.write_text(
        f'[tenants."{WAPI_INSTANCE}"]\nclient_id = "2"\nprovider = "wapi"\n'
        f'webhook_secret_file = "{wapi}"\n'
        f'[tenants."{EVOLUTION_INSTANCE}"]\nclient_id = "3"\nprovider = "evolution"\n'
        f'webhook_secret_file = "{evolution}"\n'
    )
    return path


@asynccontextmanager
async def receiver_client(
    settings: Settings, tenants: Path
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """Serve the receiver built from ``settings`` and yield a client for it."""
    producer = AsyncProducer.from_settings(settings)
    receiver = Receiver.from_settings(settings, tenants=TenantSource(tenants), producer=producer)
    try:
        client: TestClient[web.Request, web.Application] = TestClient(
            TestServer(build_app(Endpoints(receiver)))
        )
        async with client:
            yield client
    finally:
        await producer.close(timeout_s=1)


async def accepts_connections(port: int) -> bool:
    """Whether something listens on ``port`` of the loopback address right now."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


@asynccontextmanager
async def serving(settings: Settings, tenants: Path, **overrides: Any) -> AsyncIterator[int]:
    """Run the real ``serve()`` on a free port for the block; yield the port.

    Args:
        settings: the base settings.
        tenants: the tenants file.
        overrides: more ``Settings`` fields (timeouts...).

    """
    port = free_port()
    config = dataclasses.replace(settings, tenants_file=tenants, webhook_port=port, **overrides)
    stop = asyncio.Event()
    server = asyncio.create_task(serve(config, stop=stop))
    try:
        async with asyncio.timeout(20):
            while not await accepts_connections(port):
                await asyncio.sleep(0.05)
        yield port
    finally:
        stop.set()
        assert await server == 0
