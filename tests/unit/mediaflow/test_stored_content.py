"""What a stored object tells a browser: an allowlisted type, a safe extension, an attachment."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediaflow.events import MediaType
from mediaflow.stored_content import ALLOWED_TYPES, attachment, content_type, extension

ACTIVE = [
    "text/html",
    "TEXT/HTML; charset=utf-8",
    "application/xhtml+xml",
    "image/svg+xml",
    "text/xml",
    "application/xml",
    "text/javascript",
    "application/javascript",
    "application/x-shockwave-flash",
    "text/css",
    "multipart/x-mixed-replace",
    "message/rfc822",
    "application/octet-stream",
    "text/html\r\nX-Evil: 1",
    "",
    None,
]
"""Types a browser renders or runs in the bucket's origin, or that say nothing."""


@pytest.mark.parametrize("media_type", list(MediaType))
@pytest.mark.parametrize("mimetype", ACTIVE)
def test_an_active_or_unknown_type_is_stored_as_octet_stream(
    media_type: MediaType, mimetype: str | None
) -> None:
    assert content_type(media_type, mimetype) == "application/octet-stream"


@pytest.mark.parametrize(
    "file_name",
    ["x.html", "x.HTM", "x.xhtml", "x.svg", "x.svgz", "x.js", "x.mjs", "x.xml", "x.shtml", "x.mht"],
)
@pytest.mark.parametrize("mimetype", ["text/html", "application/x-unknown", None])
def test_an_active_extension_in_the_file_name_becomes_bin(
    file_name: str, mimetype: str | None
) -> None:
    assert extension(MediaType.DOCUMENT, mimetype, file_name) == "bin"


@pytest.mark.parametrize(
    ("media_type", "mimetype", "stored", "ext"),
    [
        (MediaType.IMAGE, "image/jpeg", "image/jpeg", "jpg"),
        (MediaType.IMAGE, "image/jpg", "image/jpeg", "jpg"),
        (MediaType.IMAGE, "image/webp", "image/webp", "webp"),
        (MediaType.VIDEO, "video/mp4", "video/mp4", "mp4"),
        (MediaType.AUDIO, "audio/ogg; codecs=opus", "audio/ogg", "ogg"),
        (MediaType.DOCUMENT, "application/pdf", "application/pdf", "pdf"),
        (MediaType.DOCUMENT, "text/plain", "text/plain", "txt"),
        (MediaType.DOCUMENT, "text/csv", "text/csv", "csv"),
        (MediaType.DOCUMENT, "image/png", "image/png", "png"),  # a photo sent as a document
        (MediaType.STICKER, "image/webp", "image/webp", "webp"),
    ],
)
def test_an_allowed_type_is_stored_as_itself_with_its_extension(
    media_type: MediaType, mimetype: str, stored: str, ext: str
) -> None:
    assert content_type(media_type, mimetype) == stored
    assert extension(media_type, mimetype, None) == ext


@pytest.mark.parametrize(
    ("media_type", "mimetype"),
    [
        (MediaType.IMAGE, "application/pdf"),
        (MediaType.IMAGE, "video/mp4"),
        (MediaType.AUDIO, "image/jpeg"),
        (MediaType.VIDEO, "text/plain"),
        (MediaType.STICKER, "image/png"),
    ],
)
def test_a_type_allowed_for_another_media_type_is_not_allowed_here(
    media_type: MediaType, mimetype: str
) -> None:
    assert content_type(media_type, mimetype) == "application/octet-stream"


def test_an_unknown_media_type_allows_nothing() -> None:
    assert content_type("hologram", "image/jpeg") == "application/octet-stream"
    assert content_type(None, "image/jpeg") == "application/octet-stream"


def test_a_document_of_unknown_type_keeps_an_allowed_extension_of_its_name() -> None:
    assert extension(MediaType.DOCUMENT, "application/x-weird", "Relatório Final.ODT") == "odt"
    assert extension(MediaType.IMAGE, "application/x-weird", "photo.pdf") == "bin"
    assert extension(MediaType.DOCUMENT, None, "../../passwd") == "bin"


def test_no_allowed_type_is_one_a_browser_runs() -> None:
    every = {t for types in ALLOWED_TYPES.values() for t in types}
    runs = [t for t in every if re.search(r"html|svg|script|/css|[/+]xml$", t)]
    assert runs == []


# -- Content-Disposition ------------------------------------------------------------------

HOSTILE_NAMES = [
    'x".html',
    "a\r\nX-Evil: 1.pdf",
    "résumé final.pdf",
    "../../etc/passwd",
    "..\\..\\boot.ini",
    "invoice\u202efdp.exe",
    "CON.pdf",
    "x" * 5000 + ".pdf",
    "📄 recibo 🧾.pdf",
    "a;b=c.pdf",
    "%41.pdf",
    "",
    ".",
    None,
]
_HEADER = re.compile(
    r'attachment; filename="([^"\\]*)"; filename\*=UTF-8\'\'([A-Za-z0-9!#$&+.^_`|~%-]+)'
)


@pytest.mark.parametrize("file_name", HOSTILE_NAMES)
def test_the_disposition_is_one_ascii_attachment_line_with_both_names(
    file_name: str | None,
) -> None:
    header = attachment(MediaType.DOCUMENT, "application/pdf", file_name, fallback="3EB0C767")
    assert header.isascii() and header.isprintable() and len(header) < 1200
    match = _HEADER.fullmatch(header)
    assert match, header
    ascii_name, encoded = match.groups()
    name = unquote(encoded, errors="strict")
    assert ascii_name.endswith(".pdf") and name.endswith(".pdf")
    assert not re.search(r"[/\\\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]", name)


def test_the_disposition_keeps_a_readable_name_and_the_stored_extension() -> None:
    header = attachment(MediaType.DOCUMENT, "text/html", "Relatório (1).html", fallback="m")
    assert header == (
        "attachment; filename=\"Relatorio (1).bin\"; filename*=UTF-8''Relat%C3%B3rio%20%281%29.bin"
    )


def test_a_media_without_a_name_is_named_after_its_message() -> None:
    header = attachment(MediaType.IMAGE, "image/jpeg", None, fallback="3EB0C767D26A1B2C4F8E")
    assert header == (
        'attachment; filename="3EB0C767D26A1B2C4F8E.jpg"; '
        "filename*=UTF-8''3EB0C767D26A1B2C4F8E.jpg"
    )


@given(st.text(), st.sampled_from(list(MediaType)), st.text(max_size=30))
def test_any_name_gives_a_well_formed_disposition(
    file_name: str, media_type: MediaType, mimetype: str
) -> None:
    header = attachment(media_type, mimetype, file_name, fallback="m")
    assert _HEADER.fullmatch(header), header
