"""Hostile names through the downloader's key builder: every key and metadata value stays safe.

Whatever a provider puts in file names, mimetypes, message ids, client and
instance ids (``../``, NUL, control and bidi-override characters, 10 KB
strings, Windows device names), the object key stays inside its folder, uses
a small safe alphabet, and no path segment is a Windows reserved name.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from mediaflow.events import MediaInfo, MediaType
from mediaflow.processors.downloader.keys import (
    MAX_METADATA_VALUE,
    MAX_SEGMENT,
    content_type,
    object_key,
    object_metadata,
)
from mediaflow.stored_content import ALLOWED_TYPES

RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{n}" for p in ("COM", "LPT") for n in range(1, 10)}
HOSTILE = [
    "../../etc/passwd",
    "..\\..\\windows\\system32",
    "a\x00b.pdf",
    "evil\u202egpj.exe",
    "\u200f\u2066x\u2069",
    "line\r\nbreak",
    "\x1b[31mred",
    "CON",
    "nul.txt",
    "COM1",
    "LPT9.pdf",
    "Relatório ☃ 📎.pdf",
    ".",
    "..",
    "",
    "x" * 10_240,
]
hostile_text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=300))
SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")
SHA = "ab" * 32


def info(**fields: object) -> MediaInfo:
    base: dict[str, object] = {
        "provider": "wapi",
        "client_id": "1",
        "instance_id": "I",
        "message_id": "M",
        "chat_id": "C",
        "media_type": MediaType.DOCUMENT,
        "message_timestamp": datetime(2025, 1, 2, tzinfo=UTC),
    }
    base.update(fields)
    return MediaInfo(**base)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    client=hostile_text,
    instance=hostile_text,
    message=hostile_text,
    mimetype=st.one_of(st.none(), hostile_text),
    file_name=st.one_of(st.none(), hostile_text),
)
def test_keys_from_hostile_fields_are_safe_and_stay_in_their_folder(
    client: str, instance: str, message: str, mimetype: str | None, file_name: str | None
) -> None:
    key = object_key(
        info(
            client_id=client,
            instance_id=instance,
            message_id=message,
            mimetype=mimetype,
            file_name=file_name,
        ),
        "5f1c0e9a7b3d4c2e8a6f0b1d3c5e7a9b",
        SHA,
    )
    parts = key.split("/")
    assert len(parts) == 7, key
    assert parts[0].startswith("cliente_") and parts[1].startswith("instance_")
    for part in parts:
        assert SAFE_SEGMENT.match(part), key
        assert part not in (".", "..") and ".." not in part
        assert part.split(".", 1)[0].upper() not in RESERVED, key
        assert len(part) <= MAX_SEGMENT + len("instance_") + 20
    assert parts[-1].endswith(f"-{SHA[:12]}." + parts[-1].rsplit(".", 1)[1])


@settings(max_examples=300, deadline=None)
@given(message=hostile_text, mimetype=st.one_of(st.none(), hostile_text), file_name=hostile_text)
def test_metadata_from_hostile_fields_is_printable_ascii_and_bounded(
    message: str, mimetype: str | None, file_name: str
) -> None:
    metadata = object_metadata(
        info(message_id=message, mimetype=mimetype, file_name=file_name),
        media_id="m",
        sha256_hex=SHA,
        fetch_path="wapi",
    )
    for value in metadata.values():
        assert len(value) <= MAX_METADATA_VALUE
        assert all(0x20 <= ord(c) < 0x7F for c in value), repr(value)


@given(media_type=st.sampled_from(list(MediaType)), mimetype=st.one_of(st.none(), hostile_text))
def test_content_type_is_always_an_allowed_one_or_octet_stream(
    media_type: MediaType, mimetype: str | None
) -> None:
    value = content_type(media_type, mimetype)
    assert value in ALLOWED_TYPES[media_type] or value == "application/octet-stream", value
