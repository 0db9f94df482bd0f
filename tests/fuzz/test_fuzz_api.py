"""The read API under hostile requests: a 2xx, 3xx or a 4xx JSON error, never a 5xx.

Requests are written byte by byte on a socket, so they carry what no HTTP
client library would send: percent-escapes of invalid UTF-8 and of lone
surrogates, an ``Authorization`` header that is not UTF-8. Parameter values
are drawn from what breaks parsers: huge integers (beyond 64 bits, beyond
Python's 4,300-digit ``int()`` limit), digits of other scripts ("²" passes
``str.isdigit()`` and fails ``int()``), cursors holding huge numbers, NUL or
lone surrogates, deeply nested JSON, random bytes. Each parameter is valid or
hostile, so a hostile one usually meets only valid ones and reaches the store
instead of being stopped by another one's 422.

Budget: :data:`EXAMPLES` requests against each store (SQLite and PostgreSQL),
one per example, so hypothesis shrinks a failure to the one request behind it.
Against the API before its integers were bounded it failed in every fresh run
tried (``limit=²``, ``limit=፩``, a cursor of ``[9423432436414435408, "4"]``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediaflow.config import Secret
from mediaflow.media_state import millis
from mediaflow.processors.projection.api import create_app
from mediaflow.storage.projection import LogRecord, open_store
from tests.support.projection import at, dead_lettered, detected, drop_schema, store_url, stored

TOKEN = "fuzz-api-token-123"
EXAMPLES = 2000
"""Requests per store: about 10 s each on the 2-core CI machine."""


class NoS3:
    def generate_presigned_url(self, *_args: object, **_kwargs: object) -> str:
        return "http://127.0.0.1:9/presigned"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# -- values ------------------------------------------------------------------------------

any_text = st.text(st.characters(exclude_categories=()), max_size=40)
"""Any code point, lone surrogates included (sent as the bytes Python would make of them)."""
huge_int = st.integers(min_value=-(2**80), max_value=2**80).map(str) | st.sampled_from(
    ["9" * 5000, str(2**63), str(-(2**63) - 1), "1e9", "0x10", "+5", " 7", "-0"]
)
unicode_digit = st.characters(categories=("Nd", "No")).filter(str.isdigit)
script_digits = st.one_of(
    st.text(unicode_digit, min_size=1, max_size=4),  # "٣" int() reads, "²" it cannot
    st.text(st.characters(categories=("Nd", "No", "Nl")), min_size=1, max_size=3),
)
beyond_64_bits = st.integers(min_value=2**63, max_value=2**80) | st.integers(
    min_value=-(2**80), max_value=-(2**63) - 1
)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=8,
)
hostile_cursor = st.one_of(
    st.tuples(st.integers() | beyond_64_bits, st.just("m") | any_text).map(
        lambda pair: _b64(json.dumps(list(pair)).encode())
    ),
    json_value.map(lambda value: _b64(json.dumps(value).encode())),
    st.integers(min_value=1, max_value=3000).map(lambda n: _b64(b"[" * n + b"]" * n)),
    st.binary(max_size=60).map(_b64),
    any_text,
)
moment = st.datetimes().map(lambda d: d.isoformat())
hostile_moment = st.one_of(
    st.sampled_from(["2025-13-45", "9999-12-31T23:59:59-14:00", "0001-01-01", "2025-01-01T25:00"]),
    script_digits,
    any_text,
)
# Each parameter is valid or hostile, so a hostile one usually meets only valid
# ones and reaches the store instead of being stopped by another's 422.
VALUES = {
    "limit": st.integers(1, 500).map(str) | huge_int | script_digits | any_text,
    "cursor": st.tuples(st.integers(0, 2**41), st.just("m03")).map(
        lambda pair: _b64(json.dumps(list(pair)).encode())
    )
    | hostile_cursor,
    "since": moment | hostile_moment,
    "until": moment | hostile_moment,
    "since_day": st.dates().map(str) | hostile_moment,
    "status": st.sampled_from(["stored", "dead_lettered", "detected"]) | any_text,
    "media_type": st.sampled_from(["image", "document"]) | any_text,
    "client_id": st.just("c1") | any_text,
    "instance_id": st.just("i1") | any_text,
    "message_id": st.just("wamid.A") | any_text,
    "x": any_text,
}
query = st.lists(
    st.sampled_from(sorted(VALUES)).flatmap(lambda name: st.tuples(st.just(name), VALUES[name])),
    max_size=4,
    unique_by=lambda pair: pair[0],
)
media_id = st.one_of(st.sampled_from(["m01", "m02", "m03"]), any_text.filter(bool))
route = st.sampled_from(
    [
        "/media",
        "/media",
        "/media",
        "/stats",
        "/stats/daily",
        "/media/{}",
        "/media/{}/download",
        "/instances/i1/messages/{}/media",
    ]
)
authorization = st.one_of(
    st.just(f"Bearer {TOKEN}".encode()),
    st.just(f"Bearer {TOKEN}".encode()),
    st.binary(max_size=40).map(lambda b: b"Bearer " + b.replace(b"\r", b"").replace(b"\n", b"")),
    st.none(),
)


def _escape(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def request_bytes(
    template: str, media: str, params: list[tuple[str, str]], auth: bytes | None
) -> bytes:
    path = template.format(_escape(media)) if "{}" in template else template
    if params:
        path += "?" + "&".join(f"{_escape(k)}={_escape(v)}" for k, v in params)
    head = f"GET {path} HTTP/1.1\r\nHost: api\r\nConnection: close\r\n".encode()
    if auth is not None:
        head += b"Authorization: " + auth + b"\r\n"
    return head + b"\r\n"


def answer(port: int, request: bytes) -> tuple[int, bytes, bytes]:
    """Status, Content-Type and body of the API's answer to raw ``request``."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    content_type = next(
        (
            line.split(b":", 1)[1].strip()
            for line in lines
            if line.lower().startswith(b"content-type:")
        ),
        b"",
    )
    return int(lines[0].split()[1]), content_type, body


# -- the API under test --------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api_port(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    url, schema = store_url(request.param, tmp_path_factory.mktemp("api"))
    store = open_store(url)
    events = [detected(f"m{i:02d}", i) for i in range(5)] + [stored("m01", 50)]
    store.apply_batch([LogRecord("media.events", 0, i, e) for i, e in enumerate(events)])
    store.apply_batch([LogRecord("media.events", 0, 10, dead_lettered("m02", 60))])
    app = create_app(
        store=store, token=Secret(TOKEN), s3=NoS3(), clock=lambda: millis(at(100)) / 1000
    )
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield runner.addresses[0][1]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.run_until_complete(runner.cleanup())
    loop.close()
    store.close()
    if schema:
        drop_schema(schema)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(template=route, media=media_id, params=query, auth=authorization)
def test_hostile_requests_get_a_json_answer_and_never_a_5xx(
    api_port: int, template: str, media: str, params: list[tuple[str, str]], auth: bytes | None
) -> None:
    request = request_bytes(template, media, params, auth)
    status, content_type, body = answer(api_port, request)
    assert status < 500, (request, body[:300])
    if status >= 400 and status not in (400, 431):  # aiohttp's own: a request line too long
        assert content_type.startswith(b"application/json"), (request, body[:300])
