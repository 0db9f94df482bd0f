"""The read API under random query strings and paths: a 2xx or a 4xx JSON error, never a 5xx."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import quote

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediaflow.config import Secret
from processors.projection.api import create_app
from processors.projection.apply import millis
from storage.projection import LogRecord, open_store
from tests.support.projection import at, dead_lettered, detected, stored

TOKEN = "fuzz-api-token-123"
PARAMS = [
    "limit",
    "cursor",
    "status",
    "client_id",
    "instance_id",
    "media_type",
    "since",
    "until",
    "day",
    "since_day",
    "order",
    "x",
]
text = st.text(max_size=40) | st.sampled_from(
    ["-1", "0", "1e9", "99999999999999999999", "\x00", "2025-13-45", "null", "%", "../"]
)
query = st.dictionaries(st.sampled_from(PARAMS), text, max_size=4)
path = st.sampled_from(["/media", "/stats", "/stats/daily", "/media/{}", "/media/{}/download"])


class NoS3:
    def generate_presigned_url(self, *_args: object, **_kwargs: object) -> str:
        return "http://127.0.0.1:9/presigned"


async def _check_all(tmp: Path, requests: list[tuple[str, dict[str, str], str]]) -> list[str]:
    store = open_store(f"sqlite:///{tmp / 'fuzz.db'}")
    events = [detected(f"m{i:02d}", i) for i in range(5)] + [stored("m01", 50)]
    store.apply_batch([LogRecord("media.events", 0, i, e) for i, e in enumerate(events)])
    events2 = [dead_lettered("m02", 60)]
    store.apply_batch([LogRecord("media.events", 0, 10 + i, e) for i, e in enumerate(events2)])
    app = create_app(
        store=store, token=Secret(TOKEN), s3=NoS3(), clock=lambda: millis(at(100)) / 1000
    )
    problems: list[str] = []
    async with TestClient(TestServer(app)) as client:
        for template, params, media_id in requests:
            url = template.format(quote(media_id, safe="")) if "{}" in template else template
            response = await client.get(
                url,
                params=params,
                headers={"Authorization": f"Bearer {TOKEN}"},
                allow_redirects=False,
            )
            body = await response.read()
            if response.status >= 500:
                problems.append(f"{response.status} for {url} {params!r}")
            elif response.status >= 400 and not response.content_type.endswith("json"):
                problems.append(f"{response.status} not JSON for {url} {params!r}: {body[:80]!r}")
    store.close()
    return problems


@settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(path, query, st.text(min_size=1, max_size=30) | st.just("m01")),
        min_size=60,
        max_size=60,
    )
)
def test_random_queries_get_json_answers_and_never_a_5xx(tmp_path_factory, requests) -> None:  # type: ignore[no-untyped-def]
    assert asyncio.run(_check_all(tmp_path_factory.mktemp("api"), requests)) == []
