"""The login form over HTTP: failed logins limited per address, Secure behind a trusted proxy.

The dashboard is mounted on the API application as ``serve api`` does, over a
scratch SQLite projection; logging in touches neither Kafka nor S3.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mediaflow.config import Secret, Settings
from mediaflow.ops.ui import mount
from mediaflow.ops.ui.throttle import BURST
from mediaflow.processors.projection.api import create_app
from mediaflow.storage.projection import open_store
from mediaflow.storage.s3 import s3_client

ADMIN = "admin-token-0123456789"
Factory = Callable[..., TestClient]


@pytest.fixture
async def dashboard(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """Factory: a started test client of a dashboard built from ``Settings`` overrides."""
    clients: list[TestClient] = []
    store = open_store(f"sqlite:///{tmp_path / 'ui.db'}")

    async def start(**overrides: object) -> TestClient:
        settings = dataclasses.replace(Settings(), api_token=Secret(ADMIN), **overrides)
        app = create_app(store=store, token=settings.api_token, s3=s3_client(settings.s3))
        mount(app, settings)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()
    store.close()


async def log_in(client: TestClient, token: str, **headers: str):
    return await client.post(
        "/ui/login", data={"token": token}, headers=headers, allow_redirects=False
    )


async def test_failed_logins_are_limited_per_address_and_a_success_costs_nothing(dashboard):
    client = await dashboard()
    for _ in range(BURST - 1):
        assert (await log_in(client, "a-wrong-guess")).status == 401
    for _ in range(3):  # successes in between neither wait nor use up the failures left
        assert (await log_in(client, ADMIN)).status == 303
    assert (await log_in(client, "a-wrong-guess")).status == 401
    limited = await log_in(client, "a-wrong-guess")
    assert limited.status == 429 and 1 <= int(limited.headers["Retry-After"]) <= 30
    assert "Too many failed logins" in await limited.text()
    right = await log_in(client, ADMIN)  # else the limit would not slow guessing down
    assert right.status == 429 and "Set-Cookie" not in right.headers
