"""Stored XSS through the bucket: a document a sender declares as HTML or SVG is saved, never run.

Any WhatsApp sender chooses a document's mimetype and file name. Here three
such documents go through the real downloader into S3Proxy: a small one (one
PUT), one past the multipart threshold, and one without a declared hash
(staged, then copied to its key). Each is then opened the way a person
would: the API's download link, fetched with a plain HTTP client, must answer
``Content-Disposition: attachment`` and a type no browser renders as a page.
The stored object itself must say the same, for anything that reaches the
bucket without the API (a public bucket, a CDN in front of it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import urllib.request
import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mediaflow.events import MediaDetected, MediaDownloadRequested, MediaStored
from mediaflow.processors.projection.api import create_app
from mediaflow.storage.projection import LogRecord, open_store
from mediaflow.storage.s3 import s3_client
from simulator import Faults, MediaLibrary, SampleMedia, running_simulator
from tests.support.downloader import (
    INSTANCE,
    TOKEN,
    dead_letters,
    objects,
    of_type,
    request_for,
    run_downloader,
    send,
    settings_for,
    tenants_file,
)

pytestmark = pytest.mark.integration

RENDERED = re.compile(r"html|xml|svg|javascript|ecmascript|css", re.IGNORECASE)
"""Types a browser renders or runs in the bucket's origin."""


def hostile(
    media: SampleMedia, mimetype: str, *, declared_hash: bool = True
) -> MediaDownloadRequested:
    request = request_for(media)
    info = dataclasses.replace(
        request.info,
        mimetype=mimetype,
        file_sha256=request.info.file_sha256 if declared_hash else None,
    )
    return dataclasses.replace(request, info=info)


def detected(request: MediaDownloadRequested) -> MediaDetected:
    return MediaDetected(
        event_id=str(uuid.uuid4()),
        media_id=request.media_id,
        occurred_at=request.occurred_at,
        stage="detector",
        source_event_id=request.source_event_id,
        info=request.info,
    )


async def test_an_html_or_svg_document_is_downloaded_never_rendered(
    make_settings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    library = MediaLibrary(seed=43, max_size=20_000)
    small = library.make("document", file_name="x.html")
    large = library.make("document", size=6 * 1024 * 1024, file_name="invoice.htm")
    unhashed = library.make("document", file_name="logo.svg")
    requests = [
        hostile(small, "text/html"),
        hostile(large, "text/html; charset=utf-8"),
        hostile(unhashed, "image/svg+xml", declared_hash=False),
    ]
    samples = {r.media_id: m for r, m in zip(requests, (small, large, unhashed), strict=True)}
    async with running_simulator(library, Faults(), {INSTANCE: TOKEN}) as sim:
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants_file(tmp_path))
        send(settings, requests)
        await run_downloader(settings, idle_exit_s=1.5)
    assert not dead_letters(settings)
    stored = of_type(settings, MediaStored)
    assert {e.media_id for e in stored} == set(samples)

    for head in objects(settings):
        assert not re.search(r"\.(html?|svg)$", head["Key"]), head["Key"]
        assert not RENDERED.search(head["ContentType"]), head["ContentType"]
        assert head.get("ContentDisposition", "").startswith("attachment"), head["Key"]

    store = open_store(settings.projection_db_url)
    store.apply_batch(
        [
            LogRecord("media.events", 0, i, event)
            for i, event in enumerate([*map(detected, requests), *stored])
        ]
    )
    app = create_app(store=store, token=settings.api_token, s3=s3_client(settings.s3))
    auth = {"Authorization": f"Bearer {settings.api_token.reveal()}"}
    try:
        async with TestClient(TestServer(app)) as client:
            for media_id, sample in samples.items():
                answer = await client.get(
                    f"/media/{media_id}/download", headers=auth, allow_redirects=False
                )
                assert answer.status == 302
                with urllib.request.urlopen(answer.headers["Location"], timeout=30) as fetched:
                    disposition = fetched.headers.get("Content-Disposition", "")
                    content_type = fetched.headers.get("Content-Type", "")
                    body = fetched.read()
                assert disposition.startswith("attachment;"), disposition
                assert not RENDERED.search(content_type), content_type
                assert not re.search(r"\.(html?|svg)\b", disposition), disposition
                assert hashlib.sha256(body).hexdigest() == sample.sha256_hex
    finally:
        store.close()


async def test_an_html_object_stored_before_the_fix_is_downloaded_too(settings) -> None:  # type: ignore[no-untyped-def]
    # An object written as text/html without a disposition, as the downloader used to.
    s3 = s3_client(settings.s3)
    page = b"<html><script>alert(document.domain)</script></html>"
    request = hostile(MediaLibrary(seed=44, max_size=20_000).make("document"), "text/html")
    key = f"cliente_7/instance_{INSTANCE}/document/2025/01/02/{request.info.message_id}-old.html"
    s3.put_object(Bucket=settings.s3.bucket, Key=key, Body=page, ContentType="text/html")
    event = MediaStored(
        event_id=str(uuid.uuid4()),
        media_id=request.media_id,
        occurred_at=request.occurred_at,
        stage="downloader",
        bucket=settings.s3.bucket,
        key=key,
        size=len(page),
        sha256=hashlib.sha256(page).hexdigest(),
        content_type="text/html",
        fetch_path="direct",
        duration_ms=1,
        attempt=1,
    )
    store = open_store(settings.projection_db_url)
    store.apply_batch(
        [LogRecord("media.events", 0, 0, detected(request)), LogRecord("media.events", 0, 1, event)]
    )
    app = create_app(store=store, token=settings.api_token, s3=s3)
    auth = {"Authorization": f"Bearer {settings.api_token.reveal()}"}
    try:
        async with TestClient(TestServer(app)) as client:
            answer = await client.get(
                f"/media/{request.media_id}/download", headers=auth, allow_redirects=False
            )
            with urllib.request.urlopen(answer.headers["Location"], timeout=30) as fetched:
                assert fetched.headers.get("Content-Disposition", "").startswith("attachment;")
                assert fetched.headers.get("Content-Type") == "application/octet-stream"
                assert fetched.read() == page
    finally:
        store.close()
