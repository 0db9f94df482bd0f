"""The read API's contract, on an SQLite store (the presigned download is tested on S3Proxy)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mediaflow.config import Secret
from mediaflow.media_state import millis
from mediaflow.processors.projection.api import create_app
from mediaflow.storage.projection import LogRecord, open_store
from tests.support.projection import T0, at, dead_lettered, detected, stored

TOKEN = "test-api-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class NoS3:
    def generate_presigned_url(self, *_args: object, **_kwargs: object) -> str:
        raise AssertionError("no presigning expected here")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    store = open_store(f"sqlite:///{tmp_path / 'api.db'}")
    events = [detected(f"m{i:02d}", i, client="acme" if i % 2 else "other") for i in range(12)]
    events += [stored("m01", 50), dead_lettered("m02", 60)]
    store.apply_batch([LogRecord("media.events", 0, i, e) for i, e in enumerate(events)])
    app = create_app(
        store=store, token=Secret(TOKEN), s3=NoS3(), clock=lambda: millis(at(100)) / 1000
    )
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    store.close()


async def test_requests_without_the_token_get_401(client: TestClient) -> None:
    response = await client.get("/media/m01")
    assert response.status == 401
    assert (await response.json())["error"] == "unauthorized"


async def test_a_wrong_token_gets_401(client: TestClient) -> None:
    response = await client.get("/stats", headers={"Authorization": "Bearer nope"})
    assert response.status == 401


async def test_one_media_is_returned_with_iso_times(client: TestClient) -> None:
    body = await (await client.get("/media/m01", headers=AUTH)).json()
    assert body["status"] == "stored"
    assert body["stored_at"] == "2026-11-28T12:00:50.000Z"
    assert "status_event_id" not in body


async def test_an_unknown_media_is_a_json_404(client: TestClient) -> None:
    response = await client.get("/media/nope", headers=AUTH)
    assert response.status == 404
    assert set(await response.json()) == {"error", "detail"}


async def test_an_unknown_route_is_a_json_404(client: TestClient) -> None:
    response = await client.get("/nothing/here", headers=AUTH)
    assert response.status == 404
    assert (await response.json())["error"] == "not_found"


@pytest.mark.parametrize(
    "query",
    [
        "status=lost",
        "media_type=gif",
        "limit=0",
        "limit=abc",
        "since=yesterday",
        "since=2026-11-29T00:00:00Z&until=2026-11-28T00:00:00Z",
        "cursor=!!!",
        "cursor=WzEsMl0",
        "colour=red",
        "status=stored&status=detected",
    ],
)
async def test_bad_filters_get_422(client: TestClient, query: str) -> None:
    response = await client.get(f"/media?{query}", headers=AUTH)
    assert response.status == 422
    assert (await response.json())["error"] == "invalid_query"


async def test_pagination_walks_all_rows_exactly_once(client: TestClient) -> None:
    seen: list[str] = []
    url = "/media?limit=5&client_id=acme"
    while url:
        body = await (await client.get(url, headers=AUTH)).json()
        seen += [item["media_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        url = f"/media?limit=5&client_id=acme&cursor={cursor}" if cursor else ""
    assert seen == [f"m{i:02d}" for i in range(11, 0, -2)]


async def test_filters_by_status_and_time_range(client: TestClient) -> None:
    since = (T0.replace(second=3)).isoformat()
    body = await (
        await client.get("/media", params={"status": "detected", "since": since}, headers=AUTH)
    ).json()
    assert [i["media_id"] for i in body["items"]] == [f"m{i:02d}" for i in range(11, 2, -1)]


async def test_stats_count_and_age_the_oldest_in_flight_media(client: TestClient) -> None:
    body = await (await client.get("/stats", headers=AUTH)).json()
    assert body["total"] == 12
    assert body["by_status"] == {"detected": 10, "stored": 1, "dead_lettered": 1}
    assert body["dead_letters"] == 1
    assert body["oldest_in_flight_age_s"] == 100.0


async def test_daily_counts_per_client_instance_day_and_status(client: TestClient) -> None:
    body = await (await client.get("/stats/daily?client_id=acme", headers=AUTH)).json()
    assert body["items"] == [
        {"client_id": "acme", "instance_id": "i1", "day": "2026-11-28", "status": s, "count": n}
        for s, n in (("detected", 5), ("stored", 1))
    ]


async def test_download_of_a_media_not_stored_is_a_409(client: TestClient) -> None:
    response = await client.get("/media/m03/download", headers=AUTH, allow_redirects=False)
    assert response.status == 409


async def test_the_openapi_document_is_served_without_a_token(client: TestClient) -> None:
    response = await client.get("/openapi.yaml")
    assert response.status == 200
    assert (await response.text()).startswith("openapi: 3.0")


async def test_provider_text_with_nul_control_and_replacement_characters_is_valid_json(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'hostile.db'}")
    event = detected("m-hostile", 1)
    hostile = "a\x00b\x07\x1b[2J\ufffd\u2028.jpg"
    event = dataclasses.replace(
        event, info=dataclasses.replace(event.info, file_name=hostile, sender_name="\x00")
    )
    store.apply_batch([LogRecord("media.events", 0, 0, event)])
    app = create_app(store=store, token=Secret(TOKEN), s3=NoS3(), clock=lambda: 0.0)
    async with TestClient(TestServer(app)) as test_client:
        response = await test_client.get("/media/m-hostile", headers=AUTH)
        raw = await response.read()
    store.close()
    assert response.status == 200
    body = json.loads(raw.decode("utf-8"))  # strict UTF-8, strict JSON
    assert body["file_name"] == "a\ufffdb\x07\x1b[2J\ufffd\u2028.jpg"
    assert body["sender_name"] == "\ufffd"


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "query",
    [
        "limit=%C2%B2",  # "²": str.isdigit() says yes, int() says no
        "limit=%D9%A3",  # ARABIC-INDIC DIGIT THREE: int() reads it, the API does not
        "limit=%EF%BC%95",  # FULLWIDTH DIGIT FIVE
        "limit=" + "9" * 5000,
        f"cursor={_cursor([2**70, 'm'])}",
        f"cursor={_cursor([-(2**70), 'm'])}",
        f"cursor={_cursor([2**63, 'm'])}",
        f"cursor={_cursor([1, 'm' * 5000])}",
        "cursor=" + base64.urlsafe_b64encode(b'[1, "\\ud800"]').decode(),  # a lone surrogate
        "cursor=" + base64.urlsafe_b64encode(b"[" * 1500 + b"]" * 1500).decode(),
        "cursor=" + base64.urlsafe_b64encode(b'{"a":' * 700 + b"1" + b"}" * 700).decode(),
        "cursor=" + "A" * 7000,
    ],
)
async def test_hostile_numbers_and_cursors_get_422_not_500(client: TestClient, query: str) -> None:
    response = await client.get(f"/media?{query}", headers=AUTH)
    assert response.status == 422
    assert (await response.json())["error"] == "invalid_query"


async def test_the_largest_limit_and_a_cursor_of_the_oldest_moment_are_accepted(
    client: TestClient,
) -> None:
    cursor = _cursor([-(2**63), "m"])
    response = await client.get(f"/media?limit=500&cursor={cursor}", headers=AUTH)
    assert response.status == 200


@pytest.mark.parametrize("value", [b"Bearer \xff\xfe", b"Bearer " + TOKEN.encode() + b"\xff"])
async def test_an_authorization_header_that_is_not_utf8_gets_401(
    client: TestClient, value: bytes
) -> None:
    status = await _raw_status(
        client, b"GET /stats HTTP/1.1\r\nHost: api\r\nAuthorization: " + value + b"\r\n\r\n"
    )
    assert status == 401


async def _raw_status(client: TestClient, request: bytes) -> int:
    """Send bytes no HTTP client library would, and return the answer's status."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(request)
        await writer.drain()
        status_line = await reader.readline()
    finally:
        writer.close()
    return int(status_line.split()[1])
