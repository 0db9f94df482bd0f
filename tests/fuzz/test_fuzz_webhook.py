"""The webhook receiver under random bodies, content types, paths and query
strings, producing to the real local Kafka: a 200, a 503, or a 4xx with a
JSON ``error`` and ``detail``; never any other 5xx."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import event, given, settings
from hypothesis import strategies as st

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

PAYLOADS = sorted((REPO_ROOT / "tests" / "fixtures" / "payloads").glob("*.json"))
LIMIT = 64 * 1024

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=25,
)


@st.composite
def mutated_payload(draw: st.DrawFn) -> bytes:
    """A real provider payload with some top-level fields replaced, removed or added."""
    payload: dict[str, Any] = json.loads(draw(st.sampled_from(PAYLOADS)).read_text())
    for key in draw(st.lists(st.sampled_from(sorted(payload)), max_size=3)):
        if draw(st.booleans()):
            payload.pop(key, None)
        else:
            payload[key] = draw(json_values)
    payload.update(draw(st.dictionaries(st.text(max_size=10), json_values, max_size=2)))
    return json.dumps(payload).encode()


bodies = (
    mutated_payload()
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=300)
    | st.text(max_size=300).map(str.encode)
    | st.integers(LIMIT - 2, LIMIT + 2).map(lambda n: b" " * n)
)
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
"""What an HTTP client can put in a header at all (aiohttp refuses control characters)."""
content_types = (
    st.just("application/json")
    | st.sampled_from(["application/json; charset=latin-1", "text/plain", ""])
    | HEADER_TEXT
)
tokens = st.sampled_from([WAPI_SECRET, EVOLUTION_SECRET, "", "wrong"]) | st.text(max_size=20)
queries = st.fixed_dictionaries(
    {},
    optional={"token": tokens, "instanceId": st.sampled_from([WAPI_INSTANCE, EVOLUTION_INSTANCE])},
).map(dict) | st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3)
paths = st.sampled_from(
    ["/webhooks/wapi", "/webhooks/evolution", "/webhooks/zapi", "/webhooks/other", "/webhooks/"]
)


async def _post(
    client: TestClient, path: str, content_type: str, query: dict, body: bytes
) -> tuple[int, Any]:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post(path, data=body, params=query, headers=headers)
    text = await response.text(errors="replace")
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


def test_any_request_gets_200_503_or_a_json_4xx(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings_ = make_settings(webhook_max_body_bytes=LIMIT, webhook_delivery_timeout_s=2)
    tenants = write_tenants(tmp_path)

    stack = contextlib.AsyncExitStack()
    with asyncio.Runner() as runner:
        client = runner.run(stack.enter_async_context(receiver_client(settings_, tenants)))

        @settings(max_examples=300, deadline=None)
        @given(path=paths, content_type=content_types, query=queries, body=bodies)
        def check(path: str, content_type: str, query: dict, body: bytes) -> None:
            status, answer = runner.run(_post(client, path, content_type, query, body))
            event(f"status {status}")
            assert status in (200, 503) or 400 <= status < 500, (status, answer)
            if 400 <= status < 500:
                assert isinstance(answer, dict) and answer.keys() >= {"error", "detail"}, answer

        try:
            check()
        finally:
            runner.run(stack.aclose())
