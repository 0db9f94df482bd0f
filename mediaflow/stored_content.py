"""What a stored media object tells a browser: a type it cannot run, and to save it.

Any WhatsApp sender chooses a media's mimetype and file name. Stored as
given, a ``text/html`` "document" named ``x.html`` would open as a page on
the bucket's origin (stored XSS through a presigned link). So:

* the stored ``Content-Type`` comes from :data:`ALLOWED_TYPES`, an allowlist
  per media type that holds no type a browser renders as a document or runs
  (no HTML, XML, SVG, JavaScript, CSS); anything else is
  ``application/octet-stream``;
* the extension comes from the same allowlist, or from the file name when
  that extension is one of the media type's allowed ones, else ``bin``;
* every object is stored, and every presigned link served, with
  ``Content-Disposition: attachment`` (:func:`attachment`, RFC 6266 with an
  RFC 5987 ``filename*`` and an ASCII ``filename`` fallback), so a browser
  saves it instead of rendering it.

The downloader (when writing) and the API (when presigning) call the same
functions on the same fields, so they agree. Pure.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from urllib.parse import quote

from mediaflow.events import MediaType

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_NAME = 100
"""Characters of a download name's stem; the extension comes on top."""

_IMAGES = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/heic": "heic",
    "image/heif": "heif",
    "image/avif": "avif",
    "image/bmp": "bmp",
    "image/tiff": "tif",
}
_VIDEOS = {
    "video/mp4": "mp4",
    "video/3gpp": "3gp",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "video/x-matroska": "mkv",
    "video/mpeg": "mpeg",
    "video/x-msvideo": "avi",
}
_AUDIO = {
    "audio/ogg": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/aac": "aac",
    "audio/amr": "amr",
    "audio/wav": "wav",
    "audio/webm": "weba",
    "audio/opus": "opus",
    "audio/flac": "flac",
    "audio/3gpp": "3gp",
}
_OFFICE = "application/vnd.openxmlformats-officedocument"
_DOCUMENTS = {
    "application/pdf": "pdf",
    "application/msword": "doc",
    "application/vnd.ms-excel": "xls",
    "application/vnd.ms-powerpoint": "ppt",
    f"{_OFFICE}.wordprocessingml.document": "docx",
    f"{_OFFICE}.spreadsheetml.sheet": "xlsx",
    f"{_OFFICE}.presentationml.presentation": "pptx",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.presentation": "odp",
    "application/rtf": "rtf",
    "application/epub+zip": "epub",
    "application/zip": "zip",
    "application/x-7z-compressed": "7z",
    "application/vnd.rar": "rar",
    "application/gzip": "gz",
    "application/x-tar": "tar",
    "text/plain": "txt",
    "text/csv": "csv",
}

ALLOWED_TYPES: Mapping[MediaType, Mapping[str, str]] = {
    MediaType.IMAGE: _IMAGES,
    MediaType.VIDEO: _VIDEOS,
    MediaType.AUDIO: _AUDIO,
    # A photo, song or film may be sent "as a document": its own type stays.
    MediaType.DOCUMENT: {**_DOCUMENTS, **_IMAGES, **_VIDEOS, **_AUDIO},
    MediaType.STICKER: {"image/webp": "webp"},
}
"""The content types stored as themselves, with their extension, per media type."""

_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "audio/mp3": "audio/mpeg",
    "audio/x-wav": "audio/wav",
    "audio/x-m4a": "audio/mp4",
    "application/x-rar-compressed": "application/vnd.rar",
    "application/x-zip-compressed": "application/zip",
}
"""Unregistered names senders use, and the registered type each means."""

_MIMETYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_ASCII_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()-]+")
_RFC5987_SAFE = "!#$&+^`|~"
"""attr-chars ``quote`` would escape; letters, digits and ``-._~`` it keeps anyway."""


def bare_mimetype(mimetype: str | None) -> str | None:
    """Return ``type/subtype`` lowercased without parameters, or ``None`` if not a mimetype."""
    if not mimetype:
        return None
    bare = mimetype.split(";", 1)[0].strip().lower()
    if not _MIMETYPE.match(bare):
        return None
    return _ALIASES.get(bare, bare)


def _allowed(media_type: MediaType | str | None) -> Mapping[str, str]:
    try:
        return ALLOWED_TYPES[MediaType(media_type or "")]
    except ValueError:
        return {}


def content_type(media_type: MediaType | str | None, mimetype: str | None) -> str:
    """The Content-Type to store: the declared one if the media type allows it, else octet-stream.

    Args:
        media_type: image, video, audio, document or sticker (anything else allows nothing).
        mimetype: what the sender declared, parameters and all.
    """
    bare = bare_mimetype(mimetype)
    return bare if bare in _allowed(media_type) else DEFAULT_CONTENT_TYPE


def extension(
    media_type: MediaType | str | None, mimetype: str | None, file_name: str | None
) -> str:
    """The file extension: the allowed type's, else the file name's if allowed, else ``bin``.

    Args:
        media_type: image, video, audio, document or sticker.
        mimetype: what the sender declared.
        file_name: what the sender named the file (documents), if anything.
    """
    allowed = _allowed(media_type)
    bare = bare_mimetype(mimetype)
    if bare in allowed:
        return allowed[bare]
    base = re.split(r"[/\\]", file_name or "")[-1]
    candidate = base.rsplit(".", 1)[1].strip().lower() if "." in base else ""
    return candidate if candidate in allowed.values() else "bin"


def attachment(
    media_type: MediaType | str | None,
    mimetype: str | None,
    file_name: str | None,
    *,
    fallback: str,
) -> str:
    """The ``Content-Disposition`` of a media: saved, never shown, under a safe name.

    The name is the sender's file name without its folders, control or bidi
    characters, cut to :data:`MAX_NAME`, with :func:`extension` in place of its
    own (``x.html`` is saved as ``x.bin``); ``fallback`` (the message id)
    stands in when nothing is left. ``filename*`` carries it in UTF-8
    (RFC 5987); ``filename`` an ASCII rendering for older clients.

    Args:
        media_type: image, video, audio, document or sticker.
        mimetype: what the sender declared.
        file_name: what the sender named the file, if anything.
        fallback: the name's stem when the file name gives none.
    """
    ext = extension(media_type, mimetype, file_name)
    stem = _stem(file_name) or _stem(fallback) or "media"
    name = f"{stem}.{ext}"
    folded = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    ascii_stem = _ASCII_UNSAFE.sub("_", folded).strip(" .") or "media"
    return (
        f'attachment; filename="{ascii_stem}.{ext}"; '
        f"filename*=UTF-8''{quote(name, safe=_RFC5987_SAFE)}"
    )


def _stem(file_name: str | None) -> str:
    """A file name without folders, extension, control and format characters; bounded."""
    base = re.split(r"[/\\]", file_name or "")[-1]
    if "." in base.strip("."):
        base = base.rsplit(".", 1)[0]
    kept = "".join(c for c in base if unicodedata.category(c)[0] not in "CZ" or c == " ")
    return unicodedata.normalize("NFC", kept).strip(" .")[:MAX_NAME].strip(" .")


__all__ = [
    "ALLOWED_TYPES",
    "DEFAULT_CONTENT_TYPE",
    "MAX_NAME",
    "attachment",
    "bare_mimetype",
    "content_type",
    "extension",
]
