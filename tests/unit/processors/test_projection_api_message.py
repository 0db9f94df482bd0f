"""Lookup by message: the chat platform knows an instance and a message id, not our media id."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mediaflow.config import Secret
from mediaflow.events import MediaDetected
from mediaflow.media_state import millis
from mediaflow.processors.projection.api import create_app
from mediaflow.storage.projection import LogRecord, open_store
from tests.support.projection import at, detected, stored

TOKEN = "test-api-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = at(100)


class FakeS3:
    def generate_presigned_url(self, _op: str, Params: dict, ExpiresIn: int) -> str:
        return f"http://s3.test/{Params['Bucket']}/{Params['Key']}?X-Amz-Expires={ExpiresIn}"


def of_message(media_id: str, instance: str, message: str, t: float) -> MediaDetected:
    event = detected(media_id, t, instance=instance)
    return dataclasses.replace(event, info=dataclasses.replace(event.info, message_id=message))


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    store = open_store(f"sqlite:///{tmp_path / 'api.db'}")
    events = [
        of_message("album-1", "i1", "wamid.A", 1),
        of_message("album-2", "i1", "wamid.A", 2),
        of_message("elsewhere", "i2", "wamid.A", 3),
        of_message("other", "i1", "wamid.B", 4),
        of_message("slashed", "i1", "3EB0/+=?#", 5),
        stored("album-1", 10),
    ]
    store.apply_batch([LogRecord("media.events", 0, i, e) for i, e in enumerate(events)])
    app = create_app(
        store=store,
        token=Secret(TOKEN),
        s3=FakeS3(),
        presign_ttl_s=60,
        clock=lambda: millis(NOW) / 1000,
    )
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    store.close()


@pytest.mark.parametrize(
    "url", ["/media?instance_id=i1&message_id=wamid.A", "/instances/i1/messages/wamid.A/media"]
)
async def test_every_media_of_the_message_is_answered_with_a_link_when_stored(
    client: TestClient, url: str
) -> None:
    response = await client.get(url, headers=AUTH)
    assert response.status == 200
    items = (await response.json())["items"]
    assert [i["media_id"] for i in items] == ["album-2", "album-1"]
    waiting, done = items
    assert waiting["status"] == "detected"
    assert waiting["download_url"] is None and waiting["download_url_expires_at"] is None
    assert done["status"] == "stored"
    assert done["object_key"] == "cliente_c1/instance_i1/image/2026/11/28/album-1.jpg"
    assert (done["size"], done["sha256"], done["mimetype"]) == (1234, "ab" * 32, "image/jpeg")
    assert done["download_url"] == (
        "http://s3.test/media/cliente_c1/instance_i1/image/2026/11/28/album-1.jpg?X-Amz-Expires=60"
    )
    assert done["download_url_expires_at"] == "2026-11-28T12:02:40.000Z"


async def test_a_message_nobody_has_seen_is_an_empty_list(client: TestClient) -> None:
    response = await client.get("/instances/i1/messages/wamid.none/media", headers=AUTH)
    assert response.status == 200
    assert (await response.json())["items"] == []


async def test_a_message_id_without_its_instance_is_refused_with_a_reason(
    client: TestClient,
) -> None:
    response = await client.get("/media?message_id=wamid.A", headers=AUTH)
    assert response.status == 422
    assert "message_id needs instance_id" in (await response.json())["detail"]


async def test_the_path_form_refuses_the_same_ids_again_in_the_query(client: TestClient) -> None:
    url = "/instances/i1/messages/wamid.A/media?instance_id=i2"
    response = await client.get(url, headers=AUTH)
    assert response.status == 422


async def test_a_message_id_with_reserved_characters_is_found_when_escaped(
    client: TestClient,
) -> None:
    escaped = "3EB0%2F%2B%3D%3F%23"
    for url in (
        f"/instances/i1/messages/{escaped}/media",
        f"/media?instance_id=i1&message_id={escaped}",
    ):
        response = await client.get(url, headers=AUTH)
        assert [i["media_id"] for i in (await response.json())["items"]] == ["slashed"], url


async def test_the_message_lookup_needs_the_token(client: TestClient) -> None:
    response = await client.get("/instances/i1/messages/wamid.A/media")
    assert response.status == 401


async def test_a_plain_listing_carries_no_links(client: TestClient) -> None:
    items = (await (await client.get("/media?instance_id=i1", headers=AUTH)).json())["items"]
    assert items and all("download_url" not in i for i in items)
