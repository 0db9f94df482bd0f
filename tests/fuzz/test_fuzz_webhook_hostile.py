"""The webhook receiver under hostile bodies from a caller holding a tenant's secret.

With the right secret every body is read, inflated and parsed, so this is
where the parser, the decoders and the envelope meet what an attacker (or a
broken provider) can put in JSON: integers past Python's 4,300 digits,
Unicode digits, nesting tens of thousands deep, strings up to the size limit,
lone surrogates and NULs (``\\ud800``, ``\\u0000``) in the routing fields and
the keys, numbers past a float's range, sent plain or under any
``Content-Encoding``, well-formed, truncated or made up.

Every answer is 200, 503, or a 4xx with a JSON ``error`` and ``detail``: never
another 5xx. Every 200 is on Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mediaflow.config import REPO_ROOT, Settings
from mediaflow.kafka.headers import to_dict
from mediaflow.kafka.topics import load_layout
from tests.support.kafka import read_all
from tests.support.webhook import WAPI_INSTANCE, WAPI_SECRET, receiver_client, write_tenants

pytestmark = pytest.mark.integration

LIMIT = 64 * 1024
EXAMPLES = 800
IMAGE: dict[str, Any] = json.loads(
    (REPO_ROOT / "tests" / "fixtures" / "payloads" / "wapi_image.json").read_text()
)

# ------------------------------------------------------------------ JSON text, as bytes

huge_integers = st.integers(4_290, 6_000).map(lambda n: b"-" * (n % 2) + b"7" * n)
"""Around and past the digits Python converts (4,300)."""

unicode_digits = st.text(st.characters(categories=["Nd"]), min_size=1, max_size=6)
"""``"\u0661\u0662"``, fullwidth digits, ...: bare (not JSON) or as strings (JSON)."""

deep = st.tuples(
    st.integers(1, 30_000), st.sampled_from([(b"[", b"]"), (b'{"a":', b"}"), (b"[", b"")])
).map(lambda t: t[1][0] * t[0] + b"0" + t[1][1] * t[0])
"""Nesting up to 30,000 deep, closed or not."""

huge_strings = st.integers(0, LIMIT + 16).map(lambda n: b'"' + b"x" * n + b'"')

ESCAPES = ["\\ud800", "\\udfff", "\\ud83d", "\\udc00\\ud800", "\\ud83d\\ude00", "\\u0000"]
hostile_strings = st.lists(
    st.sampled_from([*ESCAPES, "\\u001b[31m", "\\u202e", "\\\\", '\\"'])
    | st.text(max_size=4).map(lambda t: json.dumps(t)[1:-1]),
    max_size=6,
).map(lambda parts: ('"' + "".join(parts) + '"').encode())
"""JSON strings of lone surrogates, NULs, controls and plain text, as escapes."""

raw_bytes_in_strings = st.binary(max_size=8).map(lambda b: b'"' + b + b'"')
"""Bytes no JSON encoder writes: raw NULs, controls, invalid UTF-8."""

odd_numbers = st.sampled_from(
    [b"1e999999", b"-1e999999", b"1e-999999", b"NaN", b"Infinity", b"-0", b"0x10", b"01", b"1."]
)

plain_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
).map(lambda v: json.dumps(v).encode())

fragments = st.one_of(
    huge_integers,
    unicode_digits.map(str.encode),
    unicode_digits.map(lambda t: json.dumps(t, ensure_ascii=False).encode()),
    deep,
    huge_strings,
    hostile_strings,
    raw_bytes_in_strings,
    odd_numbers,
    plain_values,
)


@st.composite
def hostile_bodies(draw: st.DrawFn) -> bytes:
    """A W-API webhook with some fields replaced by hostile JSON text, or such text alone."""
    if draw(st.integers(0, 9)) == 0:
        return draw(fragments)
    fields = {key: json.dumps(value).encode() for key, value in IMAGE.items()}
    fields["instanceId"] = json.dumps(WAPI_INSTANCE).encode()  # mostly: recorded when valid
    for key in draw(st.lists(st.sampled_from(["instanceId", "event", "messageId", "moment"]))):
        fields[key] = draw(fragments)
    if draw(st.booleans()):
        fields["chat"] = b'{"id": ' + draw(fragments) + b"}"
    if draw(st.booleans()):
        fields["msgContent"] = draw(fragments)
    extra = [(draw(hostile_strings), draw(fragments)) for _ in range(draw(st.integers(0, 2)))]
    members = [json.dumps(key).encode() + b": " + value for key, value in fields.items()]
    members += [key + b": " + value for key, value in extra]
    return b"{" + b", ".join(members) + b"}"


# ------------------------------------------------------------------ content codings


def raw_deflate(body: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(body) + compressor.flush()


CODINGS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "none": ("", lambda b: b),
    "identity": ("identity", lambda b: b),
    "gzip": ("gzip", gzip.compress),
    "GZIP upper case, spaces": (" GZIP ", gzip.compress),
    "x-gzip": ("x-gzip", gzip.compress),
    "gzip, two members": ("gzip", lambda b: gzip.compress(b[:7]) + gzip.compress(b[7:])),
    "gzip without its trailer": ("gzip", lambda b: gzip.compress(b)[:-8]),
    "gzip, garbage after": ("gzip", lambda b: gzip.compress(b) + b"\x00garbage"),
    "gzip that is not": ("gzip", lambda b: b),
    "deflate": ("deflate", zlib.compress),
    "raw deflate": ("deflate", raw_deflate),
    "deflate cut short": ("deflate", lambda b: zlib.compress(b)[: len(b) // 3]),
    "identity, gzip": ("identity, gzip", gzip.compress),
    "gzip twice": ("gzip, gzip", lambda b: gzip.compress(gzip.compress(b))),
    "br": ("br", lambda b: b),
    "zstd": ("zstd", lambda b: b),
    "compress": ("compress", lambda b: b),
    "a bomb past the limit": ("gzip", lambda b: gzip.compress(b" " * (LIMIT + 1))),
}
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
made_up_codings = HEADER_TEXT.map(lambda text: (text, lambda b: b))
codings = st.integers(0, 9).flatmap(  # one in ten made up
    lambda roll: (
        st.sampled_from(sorted(CODINGS)).map(CODINGS.__getitem__) if roll else made_up_codings
    )
)


async def _post(client: TestClient, body: bytes, coding: str) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if coding:
        headers["Content-Encoding"] = coding
    response = await client.post(
        "/webhooks/wapi", data=body, params={"token": WAPI_SECRET}, headers=headers
    )
    text = await response.text(errors="replace")
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


def test_any_body_from_a_tenant_gets_200_503_or_a_json_4xx_and_every_200_is_on_kafka(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings_ = make_settings(webhook_max_body_bytes=LIMIT, webhook_delivery_timeout_s=5)
    accepted: list[str] = []

    stack = contextlib.AsyncExitStack()
    with asyncio.Runner() as runner:
        client = runner.run(
            stack.enter_async_context(receiver_client(settings_, write_tenants(tmp_path)))
        )

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(body=hostile_bodies(), coding=codings)
        def check(body: bytes, coding: tuple[str, Callable[[bytes], bytes]]) -> None:
            header, encode = coding
            status, answer = runner.run(_post(client, encode(body), header))
            event(f"status {status}")
            assert status in (200, 503) or 400 <= status < 500, (status, answer)
            if 400 <= status < 500 or status == 503:
                assert isinstance(answer, dict) and answer.keys() >= {"error", "detail"}, answer
            if status == 200:
                accepted.append(answer["event_id"])

        try:
            check()
        finally:
            runner.run(stack.aclose())

    records = read_all(settings_, load_layout(settings_.kafka).webhooks)
    on_kafka = {to_dict(record.headers())["mediaflow.event-id"] for record in records}
    assert set(accepted) <= on_kafka
