"""Hostile document names through a real upload: the downloader on real Kafka
and S3Proxy stores each document under a safe key, with a safe file-name metadata."""

from __future__ import annotations

import dataclasses
import re

import pytest

from mediaflow.events import MediaStored
from mediaflow.processors.downloader.keys import MAX_METADATA_VALUE
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

HOSTILE_NAMES = [
    "../../etc/passwd",
    "inv\x00oice.pdf",
    "a\x01b\x1b[31mred\x7f\r\n.pdf",
    "invoice\u202efdp.exe",
    "x" * 10_000 + ".pdf",
    "CON.pdf",
]
SAFE_KEY = re.compile(r"[A-Za-z0-9._/-]+")


async def test_hostile_document_names_get_safe_keys_and_safe_file_name_metadata(
    make_settings, tmp_path
) -> None:
    library = MediaLibrary(seed=41, max_size=20_000)
    media = [library.make("document", file_name=name) for name in HOSTILE_NAMES]
    async with running_simulator(library, Faults(), {INSTANCE: TOKEN}) as sim:
        settings = settings_for(make_settings, sim.wapi_url, sim.cdn_url, tenants_file(tmp_path))
        # A mimetype with no known extension makes the key take it from the name.
        requests = [
            dataclasses.replace(
                r, info=dataclasses.replace(r.info, mimetype="application/x-unknown")
            )
            for r in map(request_for, media)
        ]
        send(settings, requests)
        await run_downloader(settings, idle_exit_s=1.5)
    assert not dead_letters(settings)
    keys = {e.media_id: e.key for e in of_type(settings, MediaStored)}
    heads = {o["Metadata"]["media-id"]: o for o in objects(settings)}
    assert len(keys) == len(heads) == len(HOSTILE_NAMES)
    prefix = f"cliente_7/instance_{INSTANCE}/document/2025/01/02/"
    for request in requests:
        key = keys[request.media_id]
        assert key.startswith(prefix) and "/" not in key[len(prefix) :]
        assert SAFE_KEY.fullmatch(key) and ".." not in key and len(key) <= 200
        file_name = heads[request.media_id]["Metadata"]["file-name"]
        assert file_name.isascii() and file_name.isprintable()
        assert 0 < len(file_name) <= MAX_METADATA_VALUE
        assert "\u202e" not in file_name and "\x00" not in file_name
