"""Operator tools against the real downloader: Kafka, S3Proxy and the fake CDN on loopback.

A media the CDN reports expired is dead-lettered by the downloader; redriven
after the cause is gone it is stored; redriven while the cause is still there
it comes back to the dead-letter topic as a loop. An object deleted behind the
system's back is found by reconcile and restored by the downloader.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mediaflow.cli import build_parser
from mediaflow.config import Settings
from mediaflow.events import MediaDeadLettered, MediaRedriven, MediaStored
from mediaflow.kafka import headers as h
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
from tests.support.projection import drain_projection

pytestmark = pytest.mark.integration


def cli(settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    """Run ``mediaflow <argv> --json`` in-process; return its exit code and JSON output."""
    capsys.readouterr()
    args = build_parser().parse_args([*argv, "--json"])
    code = args.handler(args, settings)
    return code, json.loads(capsys.readouterr().out)


def expired_media(seed: int) -> tuple[MediaLibrary, SampleMedia, Faults]:
    library = MediaLibrary(seed=seed, max_size=50_000)
    media = library.make("image")
    return library, media, Faults(expired={media.cdn_id})


async def test_a_dead_letter_redriven_after_its_cause_is_removed_is_stored(
    make_settings, tmp_path: Path, capsys
) -> None:
    library, media, faults = expired_media(seed=21)
    async with running_simulator(library, faults, {INSTANCE: TOKEN}) as sim:
        tenants = tenants_file(tmp_path, fetch_order=["direct"])
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants)
        request = request_for(media)
        send(settings, [request])
        await run_downloader(settings, idle_exit_s=1.5)
        [dead] = dead_letters(settings)
        assert dead[h.DLQ_ERROR_KIND] == "expired" and not objects(settings)

        faults.expired.clear()  # the cause is removed
        code, _ = cli(settings, capsys, "dlq", "redrive", "--kind", "expired", "--operator", "t")
        assert code == 0
        await run_downloader(settings, idle_exit_s=3)

    [redriven] = of_type(settings, MediaRedriven)
    [stored] = of_type(settings, MediaStored)
    assert redriven.media_id == stored.media_id == request.media_id
    assert stored.sha256 == media.sha256_hex
    [obj] = objects(settings)
    assert obj["Key"] == stored.key and obj["Metadata"]["sha256"] == media.sha256_hex
    assert len(dead_letters(settings)) == 1


async def test_a_redriven_media_that_fails_again_is_listed_apart_as_a_loop(
    make_settings, tmp_path: Path, capsys
) -> None:
    library, media, faults = expired_media(seed=22)
    async with running_simulator(library, faults, {INSTANCE: TOKEN}) as sim:
        tenants = tenants_file(tmp_path, fetch_order=["direct"])
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants)
        request = request_for(media)
        send(settings, [request])
        await run_downloader(settings, idle_exit_s=1.5)
        code, _ = cli(settings, capsys, "dlq", "redrive", "--all", "--operator", "t")
        assert code == 0
        await run_downloader(settings, idle_exit_s=3)  # still expired: dead-lettered again

    first, again = dead_letters(settings)
    [redriven] = of_type(settings, MediaRedriven)
    assert h.REDRIVE_ID not in first
    assert again[h.REDRIVE_ID] == redriven.redrive_id
    assert again[h.DLQ_ERROR_KIND] == "expired" and again[h.DLQ_MEDIA_ID] == request.media_id
    assert len(of_type(settings, MediaDeadLettered)) == 2
    _, listing = cli(settings, capsys, "dlq", "list")
    [looped] = listing["redriven_and_failed_again"]
    assert (looped["media_id"], looped["redriven"]) == (request.media_id, True)
    assert cli(settings, capsys, "dlq", "redrive", "--id", looped["id"])[0] == 1


async def test_reconcile_finds_an_object_deleted_behind_the_systems_back_and_it_is_restored(
    make_settings, tmp_path: Path, capsys
) -> None:
    library = MediaLibrary(seed=23, max_size=50_000)
    media = library.make("audio", "ptt")
    async with running_simulator(library, Faults(), {INSTANCE: TOKEN}) as sim:
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants_file(tmp_path))
        send(settings, [request_for(media)])
        await run_downloader(settings, idle_exit_s=1.5)
        await drain_projection(settings)
        [before] = objects(settings)
        s3_client(settings.s3).delete_object(Bucket=settings.s3.bucket, Key=before["Key"])

        code, report = cli(settings, capsys, "reconcile", "--fix")
        assert [(f["problem"], report["fixed"]) for f in report["findings"]] == [
            ("missing", [of_type(settings, MediaStored)[0].media_id])
        ]
        assert code == 0
        await run_downloader(settings, idle_exit_s=1.5)

    [after] = objects(settings)
    assert after["Key"] == before["Key"]
    assert after["Metadata"]["sha256"] == before["Metadata"]["sha256"] == media.sha256_hex
    assert len(of_type(settings, MediaStored)) == 2
    assert not dead_letters(settings)
