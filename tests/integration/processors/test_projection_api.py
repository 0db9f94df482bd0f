"""The read API against the real S3Proxy: presigned downloads of a private bucket; its server."""

from __future__ import annotations

import dataclasses
import json
import signal
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mediaflow.config import Settings
from mediaflow.processors.projection.api import create_app
from mediaflow.storage.projection import LogRecord, open_store
from mediaflow.storage.s3 import s3_client
from simulator.pipeline import free_port
from tests.support.connections import OPEN_FILES, PAST_THE_LIMIT, answered, hold, read_answer
from tests.support.processes import spawn_role
from tests.support.projection import detected, stored
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

BODY = b"\xff\xd8\xff a small jpeg, honestly"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    s3 = s3_client(settings.s3)
    event = stored("m1", 5)
    event = dataclasses.replace(event, bucket=settings.s3.bucket, size=len(BODY))
    s3.put_object(Bucket=settings.s3.bucket, Key=event.key, Body=BODY)
    store = open_store(settings.projection_db_url)
    store.apply_batch(
        [LogRecord("media.events", 0, 0, detected("m1")), LogRecord("media.events", 0, 1, event)]
    )
    app = create_app(store=store, token=settings.api_token, s3=s3, presign_ttl_s=60)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    store.close()


async def test_download_redirects_to_a_presigned_url_that_fetches_the_object(
    client: TestClient, settings: Settings
) -> None:
    headers = {"Authorization": f"Bearer {settings.api_token.reveal()}"}
    response = await client.get("/media/m1/download", headers=headers, allow_redirects=False)
    assert response.status == 302
    location = response.headers["Location"]
    assert "X-Amz-Expires=60" in location
    with urllib.request.urlopen(location, timeout=10) as fetched:
        assert fetched.read() == BODY


async def test_the_bucket_itself_stays_private(client: TestClient, settings: Settings) -> None:
    headers = {"Authorization": f"Bearer {settings.api_token.reveal()}"}
    response = await client.get("/media/m1/download", headers=headers, allow_redirects=False)
    unsigned = response.headers["Location"].split("?", 1)[0]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(unsigned, timeout=10)
    assert refused.value.code == 403


async def test_a_message_lookup_links_to_the_stored_object(
    client: TestClient, settings: Settings
) -> None:
    headers = {"Authorization": f"Bearer {settings.api_token.reveal()}"}
    row = await (await client.get("/media/m1", headers=headers)).json()
    url = f"/instances/{row['instance_id']}/messages/{row['message_id']}/media"
    [item] = (await (await client.get(url, headers=headers)).json())["items"]
    assert (item["media_id"], item["size"]) == ("m1", len(BODY))
    with urllib.request.urlopen(item["download_url"], timeout=10) as fetched:
        assert fetched.read() == BODY


def test_the_api_role_closes_a_connection_that_never_sends_a_whole_request(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(create=False, api_port=free_port(), http_idle_timeout_s=0.5)
    api = spawn_role("api", settings)
    try:
        stats = urllib.request.Request(
            f"http://127.0.0.1:{settings.api_port}/stats",
            headers={"Authorization": f"Bearer {settings.api_token.reveal()}"},
        )
        assert eventually(lambda: _answers(stats), timeout=30), "the API did not start"
        with socket.create_connection(("127.0.0.1", settings.api_port), timeout=20) as half:
            half.sendall(b"GET /stats HTTP/1.1\r\nHost: api\r\n")
            assert half.recv(1024) == b""  # closed by the server, not by our 20 s timeout
    finally:
        api.terminate()
        api.wait(timeout=30)


def test_the_api_role_answers_503_to_connections_past_its_open_files_limit(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(create=False, api_port=free_port())
    api = spawn_role("api", settings, max_open_files=OPEN_FILES)
    try:
        stats = urllib.request.Request(
            f"http://127.0.0.1:{settings.api_port}/stats",
            headers={"Authorization": f"Bearer {settings.api_token.reveal()}"},
        )
        assert eventually(lambda: _answers(stats), timeout=30), "the API did not start"
        with ExitStack() as held:
            connections = hold(held, settings.api_port, PAST_THE_LIMIT)
            assert eventually(lambda: connections[-1] in answered(connections), timeout=20)
            head, body = read_answer(connections[-1])
        assert head.startswith(b"HTTP/1.1 503 ")
        assert json.loads(body)["error"] == "too_many_connections"
        assert eventually(lambda: _answers(stats), timeout=20)  # served again once they left
    finally:
        api.terminate()
        assert api.wait(timeout=30) == 0


def test_the_api_role_reloads_client_tokens_on_sighup(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    token_file = tmp_path / "acme.token"
    token_file.write_text("acme-first-token-0123456789")
    registry = tmp_path / "tenants.toml"
    registry.write_text(f'[api_tokens.acme]\nclient_id = "2"\ntoken_file = "{token_file}"\n')
    settings = make_settings(create=False, api_port=free_port(), tenants_file=registry)
    api = spawn_role("api", settings)

    def stats_with(token: str) -> urllib.request.Request:
        return urllib.request.Request(
            f"http://127.0.0.1:{settings.api_port}/stats",
            headers={"Authorization": f"Bearer {token}"},
        )

    try:
        assert eventually(lambda: _answers(stats_with("acme-first-token-0123456789")), timeout=30)
        token_file.write_text("acme-second-token-0123456789")
        api.send_signal(signal.SIGHUP)
        assert eventually(lambda: _answers(stats_with("acme-second-token-0123456789")), timeout=20)
        assert not _answers(stats_with("acme-first-token-0123456789"))
    finally:
        api.terminate()
        assert api.wait(timeout=30) == 0


def _answers(request: urllib.request.Request) -> bool:
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False
