"""A dashboard on the real stack: seeded media and dead letters, the API app with /ui/ mounted."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.errors import ErrorKind, MediaExpired
from mediaflow.kafka.records import InRecord
from mediaflow.kafka.retry import DeadLetter
from mediaflow.kafka.routing import FailureRouter
from mediaflow.kafka.topics import TopicLayout
from mediaflow.ops.ui import mount
from mediaflow.processors.projection.api import create_app
from mediaflow.processors.projection.tokens import TokenSource
from mediaflow.storage.projection import LogRecord, ProjectionStore
from mediaflow.storage.s3 import s3_client
from tests.support.dead_letters import NOW, request
from tests.support.kafka import produce, read_all
from tests.support.projection import detected, stored

HOSTILE_NAME = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>.jpg'
"""A sender-chosen file name that runs script if any page forgets to escape it."""
JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xdb\x00C\x00"
    + bytes(range(1, 65))
    + b"\xff\xc0\x00\x0b\x08\x00\x01\x00\x01\x01\x01\x11\x00\xff\xc4\x00\x14\x00\x01"
    + bytes(15)
    + b"\x03\xff\xc4\x00\x14\x10\x01"
    + bytes(15)
    + b"\x00\xff\xda\x00\x08\x01\x01\x00\x00?\x00\x37\xff\xd9"
)
"""A 1x1 JPEG, so the preview really decodes in a browser."""
CODEC = AvroCodec()


def seed_stored_media(
    settings: Settings,
    store: ProjectionStore,
    media_id: str = "m-img",
    *,
    client: str = "c1",
    message_id: str = "msg-hostile-1",
) -> None:
    """A stored image with a hostile file name, its object in the bucket."""
    found = detected(media_id, client=client)
    info = dataclasses.replace(found.info, file_name=HOSTILE_NAME, message_id=message_id)
    found = dataclasses.replace(found, info=info)
    event = dataclasses.replace(
        stored(media_id, 5), bucket=settings.s3.bucket, size=len(JPEG), content_type="image/jpeg"
    )
    s3_client(settings.s3).put_object(Bucket=settings.s3.bucket, Key=event.key, Body=JPEG)
    start = store.offsets("media.events").get(0, 0)  # after the media seeded before
    store.apply_batch(
        [LogRecord("media.events", 0, start, found), LogRecord("media.events", 0, start + 1, event)]
    )


def seed_dead_letter(
    settings: Settings, layout: TopicLayout, media_id: str, *, client: str = "2"
) -> None:
    """A download request of ``client``, dead-lettered as the downloader's router writes it."""
    record = InRecord(
        topic=layout.download_requests,
        partition=0,
        offset=7,
        key=media_id.encode(),
        value=CODEC.encode(request(media_id, client=client)),
        headers=[],
        timestamp=NOW,
    )
    router = FailureRouter("downloader", "mediaflow-downloader", layout.dead_letters)
    out = router.route(
        record, DeadLetter(ErrorKind.EXPIRED, "410", 1, MediaExpired("410")), NOW, media_id
    )
    produce(settings, out.topic, [(out.key, out.value, out.headers)])


def apply_event_log(settings: Settings, layout: TopicLayout, store: ProjectionStore) -> None:
    """Apply the media event log to the projection, as the projection stage would."""
    messages = read_all(settings, layout.media_events)
    store.apply_batch(
        [
            LogRecord(layout.media_events, m.partition(), m.offset(), CODEC.decode(m.value()))
            for m in messages
        ]
    )


def dashboard_app(
    settings: Settings, store: ProjectionStore, tokens: TokenSource | None = None
) -> web.Application:
    """The API application with the dashboard mounted, as `mediaflow serve api` builds it.

    ``tokens``: every accepted token (client tokens too); the admin token only without it.
    """
    app = create_app(
        store=store,
        token=settings.api_token,
        s3=s3_client(settings.s3),
        presign_ttl_s=60,
        tokens=tokens,
    )
    mount(app, settings)
    return app
