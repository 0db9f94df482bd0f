"""Bad requests get a 4xx with a JSON body that says what is wrong; never a 500."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from mediaflow.config import REPO_ROOT, Settings
from tests.support.webhook import (
    EVOLUTION_INSTANCE,
    EVOLUTION_SECRET,
    WAPI_INSTANCE,
    WAPI_SECRET,
    receiver_client,
    write_tenants,
)

pytestmark = pytest.mark.integration

LIMIT = 6000
JSON = {"Content-Type": "application/json"}
IMAGE = (REPO_ROOT / "tests" / "fixtures" / "payloads" / "wapi_image.json").read_bytes()


@pytest.fixture
async def client(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[TestClient]:
    # No topics: none of these requests may reach Kafka.
    settings = make_settings(create=False, webhook_max_body_bytes=LIMIT)
    async with receiver_client(settings, write_tenants(tmp_path)) as test_client:
        yield test_client


async def post(client: TestClient, body: bytes | object, **kwargs: object) -> tuple[int, dict]:
    kwargs.setdefault("headers", JSON)
    kwargs.setdefault("params", {"token": WAPI_SECRET})
    response = await client.post("/webhooks/wapi", data=body, **kwargs)
    return response.status, await response.json()


async def test_declared_body_over_the_limit_is_413(client: TestClient) -> None:
    status, answer = await post(client, b" " * (LIMIT + 1))
    assert status == 413
    assert answer["error"] == "payload_too_large"
    assert str(LIMIT) in answer["detail"]


async def test_chunked_body_over_the_limit_is_413(client: TestClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * 1024

    status, answer = await post(client, chunks())
    assert status == 413
    assert answer["error"] == "payload_too_large"


async def test_non_json_content_type_is_415(client: TestClient) -> None:
    status, answer = await post(client, IMAGE, headers={"Content-Type": "text/plain"})
    assert status == 415
    assert "text/plain" in answer["detail"]


async def test_invalid_json_is_400_with_the_parse_position(client: TestClient) -> None:
    status, answer = await post(client, b'{"event": "webhookReceived",\n "instanceId": }')
    assert status == 400
    assert answer["error"] == "invalid_json"
    assert "line 2 column 16 (char 44)" in answer["detail"]


async def test_json_that_is_not_an_object_is_422(client: TestClient) -> None:
    status, answer = await post(client, b'[{"instanceId": "x"}]')
    assert status == 422
    assert "array" in answer["detail"]


async def test_missing_instance_id_is_422_naming_the_field(client: TestClient) -> None:
    payload = json.loads(IMAGE)
    del payload["instanceId"]
    status, answer = await post(client, json.dumps(payload).encode())
    assert status == 422
    assert answer["error"] == "missing_fields"
    assert "instanceId" in answer["detail"]


async def test_unknown_instance_and_wrong_secret_get_the_same_401(client: TestClient) -> None:
    unknown = IMAGE.replace(WAPI_INSTANCE.encode(), b"NOPE-NOPE-NOPE")
    assert await post(client, unknown) == await post(client, IMAGE, params={"token": "wrong"})
    status, answer = await post(client, IMAGE, params={"token": "wrong"})
    assert status == 401
    assert answer == {"error": "unauthorized", "detail": "unknown instance or wrong token"}


async def test_missing_token_is_401(client: TestClient) -> None:
    status, _ = await post(client, IMAGE, params={})
    assert status == 401


async def test_a_tenant_of_another_provider_is_401(client: TestClient) -> None:
    # The Evolution tenant's own secret does not open the W-API endpoint.
    body = IMAGE.replace(WAPI_INSTANCE.encode(), EVOLUTION_INSTANCE.encode())
    status, _ = await post(client, body, params={"token": EVOLUTION_SECRET})
    assert status == 401


async def test_a_compressed_body_over_the_limit_once_decompressed_is_413(
    client: TestClient,
) -> None:
    # Small on the wire, so no declared length gives it away: a JSON object the
    # receiver would take, padded past the limit.
    padded = IMAGE.rstrip()[:-1] + b" " * LIMIT + b"}"
    status, answer = await post(
        client, gzip.compress(padded), headers={**JSON, "Content-Encoding": "gzip"}
    )
    assert status == 413
    assert answer["error"] == "payload_too_large"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_body_its_content_encoding_cannot_decode_is_400(
    client: TestClient, encoding: str
) -> None:
    status, answer = await post(client, IMAGE, headers={**JSON, "Content-Encoding": encoding})
    assert status == 400
    assert answer["error"] == "unreadable_body"
    assert answer["detail"].startswith(f"the body could not be read: it is not valid {encoding} (")


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, gzip"])
async def test_a_content_encoding_the_receiver_does_not_decode_is_415(
    client: TestClient, encoding: str
) -> None:
    response = await client.post(
        "/webhooks/wapi",
        data=IMAGE,
        params={"token": WAPI_SECRET},
        headers={**JSON, "Content-Encoding": encoding},
    )
    assert response.status == 415
    assert response.headers["Accept-Encoding"] == "gzip, deflate"
    assert (await response.json())["error"] == "unsupported_content_encoding"


async def test_unknown_paths_and_methods_answer_json_that_names_what_is_served(
    client: TestClient,
) -> None:
    missing = await client.get("/webhooks/nope")
    wrong_method = await client.get("/webhooks/wapi")
    not_a_page_method = await client.post("/healthz")
    assert (missing.status, wrong_method.status, not_a_page_method.status) == (404, 405, 405)
    assert await missing.json() == {
        "error": "not_found",
        "detail": "nothing is served at /webhooks/nope; webhooks go to POST "
        "/webhooks/wapi, /webhooks/evolution, /webhooks/zapi",
    }
    assert await wrong_method.json() == {
        "error": "method_not_allowed",
        "detail": "/webhooks/wapi does not take GET; it takes POST",
    }
    assert wrong_method.headers["Allow"] == "POST"
    assert not_a_page_method.headers["Allow"] == "GET, HEAD"


async def test_health_answers_head_without_a_body(client: TestClient) -> None:
    answer = await client.head("/healthz")
    assert answer.status == 200
    assert await answer.read() == b""


HOSTILE = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b"\xff\xfe\x00garbage",
    b"",
    b"null",
    b"NaN",
    b"1e999999",
    b'"\\ud800"',
    b'{"instanceId": 12, "event": "webhookReceived"}',
    b'{"instanceId": "", "event": "webhookReceived"}',
    b'{"instanceId": null}',
    b'{"instanceId": "3B6XIW-ZTS923-GEAY6V", "event": ["x"], "chat": "x"}',
    b'{"instanceId": "NOPE-NOPE-NOPE", "event": "x", "chat": {"id": {"a": 1}}}',
    b'{"instanceId": "\\u0000", "event": "\\u0000"}',
    '{"instanceId": "\u00e7\u00e3o\U0001f600", "event": "e"}'.encode(),
    b'{"x": ' + b"1" * 5000 + b"}",
    b'{"instanceId": "3B6XIW-ZTS923-GEAY6V", "event": "x", "n": -' + b"9" * 4301 + b"}",
    b'{"instanceId": "\\ud800", "event": "\\udfff"}',
    '{"instanceId": "\u0661\u0662", "event": "\uff11"}'.encode(),
    b'{"instanceId": "' + b"x" * 2000 + b'", "event": "' + b"\\u0000" * 300 + b'"}',
]


@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
async def test_no_client_input_causes_a_500(client: TestClient, body: bytes) -> None:
    # The right token, so that every body is read and parsed; none of them names
    # the tenant's instance with an event it would record, so none reaches Kafka.
    for headers in (JSON, {"Content-Type": "application/json; charset=latin-1"}):
        status, answer = await post(client, body, headers=headers)
        assert 400 <= status < 500, answer
        assert set(answer) == {"error", "detail"}
