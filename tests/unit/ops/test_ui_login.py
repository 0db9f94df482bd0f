"""The login over HTTP: failed logins limited per address; Secure behind a trusted TLS proxy.

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
from mediaflow.errors import ConfigError
from mediaflow.ops.ui import mount
from mediaflow.ops.ui.proxy import trusted_networks
from mediaflow.ops.ui.throttle import BURST
from mediaflow.processors.projection.api import create_app
from mediaflow.storage.projection import open_store
from mediaflow.storage.s3 import s3_client

ADMIN = "admin-token-0123456789"


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


async def test_the_cookie_is_secure_behind_a_trusted_tls_proxy_and_only_there(dashboard):
    https = {"X-Forwarded-Proto": "https"}
    direct = await dashboard()  # anyone can send the header: ignored by default
    assert "Secure" not in (await log_in(direct, ADMIN, **https)).headers["Set-Cookie"]
    proxied = await dashboard(api_trusted_proxies=("127.0.0.1",))
    assert "Secure" in (await log_in(proxied, ADMIN, **https)).headers["Set-Cookie"]
    assert "Secure" not in (await log_in(proxied, ADMIN)).headers["Set-Cookie"]
    # The browser's Origin is the proxy's https one: still the same origin.
    origin = str(proxied.make_url("")).replace("http://", "https://").rstrip("/")
    assert (await log_in(proxied, ADMIN, Origin=origin, **https)).status == 303
    assert (await log_in(direct, ADMIN, Origin=origin, **https)).status == 403


async def test_behind_a_trusted_proxy_failed_logins_count_per_forwarded_client(dashboard):
    proxied = await dashboard(api_trusted_proxies=("127.0.0.0/8",))
    guesser = {"X-Forwarded-For": "203.0.113.7"}
    for _ in range(BURST):
        assert (await log_in(proxied, "a-wrong-guess", **guesser)).status == 401
    assert (await log_in(proxied, ADMIN, **guesser)).status == 429
    assert (await log_in(proxied, ADMIN, **{"X-Forwarded-For": "198.51.100.1"})).status == 303
    # What the client wrote left of what the proxy added is not believed.
    spoofed = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7"}
    assert (await log_in(proxied, ADMIN, **spoofed)).status == 429

    direct = await dashboard()  # no trusted proxy: a forged X-Forwarded-For changes nothing
    for i in range(BURST):
        await log_in(direct, "a-wrong-guess", **{"X-Forwarded-For": f"192.0.2.{i}"})
    assert (await log_in(direct, ADMIN, **{"X-Forwarded-For": "192.0.2.99"})).status == 429


def test_a_trusted_proxy_that_is_no_address_stops_the_dashboard_naming_the_variable():
    with pytest.raises(ConfigError, match="MEDIAFLOW_API_TRUSTED_PROXIES"):
        trusted_networks(["10.0.0.0/8", "proxy.internal"])
    assert Settings.from_env(
        {"MEDIAFLOW_API_TRUSTED_PROXIES": "10.0.0.5, 192.168.0.0/16"}
    ).api_trusted_proxies == ("10.0.0.5", "192.168.0.0/16")
