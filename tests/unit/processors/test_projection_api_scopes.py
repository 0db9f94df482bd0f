"""Client tokens: a platform's client sees its own media, counts and dead letters, no other's.

Every route and every way in is tried with the client token of ``acme``:
another client's media by id (404, as for an unknown id), its download, its
message lookup, listings filtered by another client, with a status, with a
cursor made by the admin, ``/stats`` and ``/stats/daily``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mediaflow.config import Secret
from mediaflow.events import MediaDetected
from mediaflow.media_state import millis
from mediaflow.processors.projection.api import create_app
from mediaflow.processors.projection.tokens import ApiTokens, TokenSource
from mediaflow.storage.projection import LogRecord, open_store
from mediaflow.storage.projection.base import ProjectionStore
from tests.support.projection import at, dead_lettered, detected, stored

ADMIN = "admin-token-0123456789"
ACME = "acme-token-0123456789abc"
ACME_NEXT = "acme-rotated-0123456789"
REGISTRY = """
[api_tokens."acme-platform"]
client_id = "acme"
token_env = "ACME_API_TOKEN"
"""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class FakeS3:
    def generate_presigned_url(self, _op: str, Params: dict, ExpiresIn: int) -> str:
        return f"http://s3.test/{Params['Bucket']}/{Params['Key']}?X-Amz-Expires={ExpiresIn}"


def of(media_id: str, client: str, t: float, message: str = "wamid.X") -> MediaDetected:
    event = detected(media_id, t, client=client)
    return dataclasses.replace(event, info=dataclasses.replace(event.info, message_id=message))


@pytest.fixture
def store(tmp_path: Path) -> AsyncIterator[ProjectionStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'api.db'}")
    events = [of(f"a{i}", "acme", i) for i in range(3)] + [
        of(f"o{i}", "other", 10 + i) for i in range(4)
    ]
    events += [stored("a0", 30), stored("o0", 31), dead_lettered("a1", 32), dead_lettered("o1", 33)]
    opened.apply_batch([LogRecord("media.events", 0, i, e) for i, e in enumerate(events)])
    yield opened
    opened.close()


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "tenants.toml"
    path.write_text(REGISTRY)
    return path


@pytest.fixture
async def client(store: ProjectionStore, registry: Path) -> AsyncIterator[TestClient]:
    environ = {"ACME_API_TOKEN": ACME}
    tokens = TokenSource(
        functools.partial(ApiTokens.load, registry, admin=Secret(ADMIN), environ=environ)
    )
    app = create_app(
        store=store,
        token=Secret(ADMIN),
        s3=FakeS3(),
        tokens=tokens,
        clock=lambda: millis(at(100)) / 1000,
    )
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def ids(client: TestClient, url: str, token: str = ACME) -> list[str]:
    response = await client.get(url, headers=bearer(token))
    assert response.status == 200, await response.text()
    return [item["media_id"] for item in (await response.json())["items"]]


async def test_the_admin_token_sees_every_client(client: TestClient) -> None:
    assert len(await ids(client, "/media", ADMIN)) == 7
    assert (await client.get("/media/o0", headers=bearer(ADMIN))).status == 200


async def test_a_client_token_lists_only_its_clients_media(client: TestClient) -> None:
    assert await ids(client, "/media") == ["a2", "a1", "a0"]
    assert await ids(client, "/media?client_id=acme") == ["a2", "a1", "a0"]
    assert await ids(client, "/media?client_id=other") == []
    assert await ids(client, "/media?status=dead_lettered") == ["a1"]
    assert await ids(client, "/media?instance_id=i1&message_id=wamid.X") == ["a2", "a1", "a0"]
    assert await ids(client, "/instances/i1/messages/wamid.X/media") == ["a2", "a1", "a0"]


@pytest.mark.parametrize("url", ["/media/o0", "/media/o0/download", "/media/o2/download"])
async def test_another_clients_media_is_not_found_exactly_as_an_unknown_one(
    client: TestClient, url: str
) -> None:
    other = await client.get(url, headers=bearer(ACME), allow_redirects=False)
    unknown = await client.get(
        url.replace("/o", "/nonexistent"), headers=bearer(ACME), allow_redirects=False
    )
    assert other.status == unknown.status == 404
    assert (await other.json())["error"] == (await unknown.json())["error"] == "not_found"


async def test_a_client_token_reads_and_downloads_its_own_media(client: TestClient) -> None:
    assert (await client.get("/media/a0", headers=bearer(ACME))).status == 200
    response = await client.get("/media/a0/download", headers=bearer(ACME), allow_redirects=False)
    assert response.status == 302


async def test_a_cursor_made_for_the_admin_does_not_reach_past_the_client(
    client: TestClient,
) -> None:
    first = await (await client.get("/media?limit=1", headers=bearer(ADMIN))).json()
    assert first["items"][0]["media_id"] == "o3"
    cursor = first["next_cursor"]
    assert await ids(client, f"/media?limit=500&cursor={cursor}") == ["a2", "a1", "a0"]
    walked: list[str] = []
    url = "/media?limit=1"
    while url:
        body = await (await client.get(url, headers=bearer(ACME))).json()
        walked += [item["media_id"] for item in body["items"]]
        url = f"/media?limit=1&cursor={body['next_cursor']}" if body["next_cursor"] else ""
    assert walked == ["a2", "a1", "a0"]


async def test_stats_of_a_client_token_count_only_its_client(client: TestClient) -> None:
    body = await (await client.get("/stats", headers=bearer(ACME))).json()
    assert body["total"] == 3
    assert body["by_client"] == {"acme": 3}
    assert body["by_status"] == {"stored": 1, "dead_lettered": 1, "detected": 1}
    assert body["dead_letters"] == 1
    admin = await (await client.get("/stats", headers=bearer(ADMIN))).json()
    assert admin["by_client"] == {"acme": 3, "other": 4}
    assert admin["dead_letters"] == 2


async def test_daily_counts_of_a_client_token_count_only_its_client(client: TestClient) -> None:
    mine = await (await client.get("/stats/daily", headers=bearer(ACME))).json()
    assert {item["client_id"] for item in mine["items"]} == {"acme"}
    asked = await client.get("/stats/daily?client_id=other", headers=bearer(ACME))
    assert (await asked.json())["items"] == []


async def test_an_unknown_token_is_refused(client: TestClient) -> None:
    response = await client.get("/media", headers=bearer(ACME + "x"))
    assert response.status == 401


async def test_a_reload_brings_in_a_new_token_and_retires_the_removed_one(
    store: ProjectionStore, registry: Path
) -> None:
    environ = {"ACME_API_TOKEN": ACME}
    tokens = TokenSource(
        functools.partial(ApiTokens.load, registry, admin=Secret(ADMIN), environ=environ)
    )
    app = create_app(store=store, token=Secret(ADMIN), s3=FakeS3(), tokens=tokens)
    async with TestClient(TestServer(app)) as test_client:
        assert (await test_client.get("/stats", headers=bearer(ACME_NEXT))).status == 401
        environ["ACME_API_TOKEN"] = ACME_NEXT
        assert tokens.reload()
        assert (await test_client.get("/stats", headers=bearer(ACME_NEXT))).status == 200
        assert (await test_client.get("/stats", headers=bearer(ACME))).status == 401
        registry.write_text("[api_tokens.broken]\nclient_id = 'acme'\ntoken = 'inline!'\n")
        assert not tokens.reload()  # an invalid file keeps the tokens in force
        assert (await test_client.get("/stats", headers=bearer(ACME_NEXT))).status == 200
