"""A media is stored once however often and whenever it is delivered (real Kafka and S3Proxy)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest

from mediaflow.events import MediaDownloadRequested, MediaStored
from mediaflow.storage.objects import MediaStore
from mediaflow.storage.s3 import s3_client
from simulator import Faults, MediaLibrary, running_simulator
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


def redelivered(request: MediaDownloadRequested, days_later: int) -> MediaDownloadRequested:
    """The same media detected again from a webhook the provider sent again, days later."""
    return dataclasses.replace(
        request,
        event_id=str(uuid.uuid4()),
        source_event_id=str(uuid.uuid4()),
        occurred_at=request.occurred_at + timedelta(days=days_later),
    )


async def test_a_media_without_timestamp_redelivered_days_later_is_stored_once(
    make_settings, tmp_path
) -> None:
    library = MediaLibrary(seed=41, max_size=20_000)
    media = library.make("image")
    first = request_for(media)
    first = dataclasses.replace(first, info=dataclasses.replace(first.info, message_timestamp=None))
    async with running_simulator(library, Faults(), {INSTANCE: TOKEN}) as sim:
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants_file(tmp_path))
        send(settings, [first])
        await run_downloader(settings, idle_exit_s=1.5)
        send(settings, [redelivered(first, days_later=3)])
        await run_downloader(settings, idle_exit_s=1.5)
        downloads = sim.calls.count("cdn") + sim.calls.count("files")

    stored = of_type(settings, MediaStored)
    assert [e.fetch_path for e in stored] == ["wapi", "existing"]
    assert stored[0].key == stored[1].key and "/image/undated/" in stored[0].key
    assert [o["Key"] for o in objects(settings)] == [stored[0].key]
    assert downloads == 1
    assert not dead_letters(settings)


async def test_over_a_hundred_media_without_message_id_on_one_day_are_each_stored_once(
    make_settings, tmp_path
) -> None:
    library = MediaLibrary(seed=42, max_size=2_000)
    media = [library.make("image") for _ in range(105)]
    requests = []
    for m in media:
        request = request_for(m)
        requests.append(
            dataclasses.replace(request, info=dataclasses.replace(request.info, message_id=""))
        )
    async with running_simulator(library, Faults(), {INSTANCE: TOKEN}) as sim:
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants_file(tmp_path))
        send(settings, requests)
        await run_downloader(settings, idle_exit_s=2)
        downloads = sim.calls.count("files")
        send(settings, [redelivered(r, days_later=1) for r in requests])
        await run_downloader(settings, idle_exit_s=2)
        assert sim.calls.count("files") == downloads == len(media)

    stored = of_type(settings, MediaStored)
    again = [e for e in stored if e.fetch_path == "existing"]
    assert len(stored) == 2 * len(media) and len(again) == len(media)
    assert {e.media_id for e in again} == {r.media_id for r in requests}
    assert len(objects(settings)) == len(media)
    assert not dead_letters(settings)


async def test_a_stored_media_is_found_behind_many_pages_of_keys_sharing_its_prefix(
    settings,
) -> None:
    client, bucket = s3_client(settings.s3), settings.s3.bucket
    prefix = "cliente_1/instance_a/image/2025/01/02/3EB0REUSED-"
    for n in range(25):
        client.put_object(
            Bucket=bucket,
            Key=f"{prefix}{n:012d}.jpg",
            Body=b"x",
            Metadata={"media-id": f"m{n}", "sha256": f"{n:064d}"},
        )
    store = MediaStore(client, settings.s3, page_size=10)

    found = await store.find_existing(prefix, "m24", f"{24:064d}")

    assert found is not None and found.key == f"{prefix}{24:012d}.jpg"
    assert await store.find_existing(prefix, "m99") is None
