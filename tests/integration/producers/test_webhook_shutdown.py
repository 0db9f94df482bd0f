"""SIGTERM: stop accepting, finish the request in flight (200, on Kafka), exit 0."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from mediaflow.config import REPO_ROOT, Settings
from mediaflow.kafka.topics import load_layout
from mediaflow.producers.webhook import serve
from simulator.pipeline import free_port
from tests.support.kafka import read_all
from tests.support.webhook import WAPI_SECRET, accepts_connections, scraped, write_tenants

pytestmark = pytest.mark.integration

IMAGE = (REPO_ROOT / "tests" / "fixtures" / "payloads" / "wapi_image.json").read_bytes()


async def until(predicate, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.05)


async def test_sigterm_drains_the_request_in_flight_then_exits_0(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    config = dataclasses.replace(settings, tenants_file=write_tenants(tmp_path), webhook_port=port)
    server = asyncio.create_task(serve(config))
    released = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield IMAGE[:100]
        await released.wait()
        yield IMAGE[100:]

    async def in_flight() -> bool:
        return await asyncio.to_thread(scraped, port, "mediaflow_webhook_in_flight") >= 1

    async def closed() -> bool:
        return not await accepts_connections(port)

    async with aiohttp.ClientSession() as session:
        await until(lambda: accepts_connections(port))
        request = asyncio.create_task(
            session.post(
                f"http://127.0.0.1:{port}/webhooks/wapi?token={WAPI_SECRET}",
                data=slow_body(),
                headers={"Content-Type": "application/json"},
            )
        )
        await until(in_flight)
        os.kill(os.getpid(), signal.SIGTERM)
        await until(closed)  # no longer accepting...
        released.set()  # ...yet the request in flight completes
        response = await request
        assert response.status == 200
        event_id = (await response.json())["event_id"]
    assert await server == 0
    [record] = read_all(settings, load_layout(settings.kafka).webhooks)
    assert dict(record.headers())["mediaflow.event-id"] == event_id.encode()
