"""Where a media lands in the bucket, and the metadata stored with it. Pure.

Key layout (the seed system's, made collision-proof by the hash)::

    cliente_{client}/instance_{instance}/{media_type}/{yyyy}/{mm}/{dd}/{message_id}-{sha12}.{ext}

Every segment comes from a provider payload, so every segment is sanitized:
no ``/``, no ``..``, no NUL, control or bidi characters, bounded length.

A media gets the same key whenever it is (re)delivered, so the existence check
before a download always finds what an earlier delivery stored:

* the date is the message's own timestamp (UTC). A message without one goes to
  ``{media_type}/undated/`` instead of a date folder: nothing else about it is
  stable. The detection time is not (a webhook the provider redelivers, or a
  replay, is detected again, another day), nor is the time a webhook was
  received, and the media id and message id are hashes and opaque ids with no
  date in them;
* a media without a usable message id is named ``unknown-{media_id}`` instead
  of ``{message_id}``, so the part of the key fixed before the download (see
  :func:`key_prefix`) belongs to that one media and not to every other media
  without a message id of that day.

The extension, the stored ``Content-Type`` and the ``Content-Disposition:
attachment`` come from :mod:`mediaflow.stored_content`: nothing a browser
would render or run.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC

from mediaflow.events import MediaInfo
from mediaflow.stored_content import attachment, content_type, extension

MAX_SEGMENT = 80
MAX_METADATA_VALUE = 256

UNDATED = "undated"
"""The date folder of a media whose message carries no timestamp."""

_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{p}{n}" for p in ("COM", "LPT") for n in range(1, 10)}
)
"""Device names Windows refuses as a file name, with or without an extension."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def segment(value: str | None, *, fallback: str = "unknown", limit: int = MAX_SEGMENT) -> str:
    """Make one key segment safe: ASCII letters, digits, ``.``, ``_``, ``-``; bounded.

    Slashes, ``..``, NUL, control and bidi characters all disappear (any run of
    other characters becomes one ``_``); accents are folded to ASCII first.

    Args:
        value: the raw text from the payload.
        fallback: used when nothing safe is left.
        limit: maximum length.
    """
    folded = unicodedata.normalize("NFKD", value or "").encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", folded)
    cleaned = re.sub(r"\.{2,}", "_", cleaned).strip("._")[:limit].strip("._")
    return cleaned or fallback


def file_segment(value: str | None) -> str:
    """:func:`segment` for the start of a file name: a Windows device name gets a ``_`` in front.

    ``nul.txt-<hash>.jpg`` is still the device ``NUL`` on Windows, so a bucket
    synced to a Windows disk would break on it.
    """
    cleaned = segment(value)
    if cleaned.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        return f"_{cleaned}"
    return cleaned


def date_folder(info: MediaInfo) -> str:
    """``yyyy/mm/dd`` of the message's timestamp (UTC), or :data:`UNDATED` without one.

    A timestamp without a zone is taken as UTC.
    """
    moment = info.message_timestamp
    if moment is None:
        return UNDATED
    day = moment.astimezone(UTC) if moment.tzinfo else moment
    return f"{day.year:04d}/{day.month:02d}/{day.day:02d}"


def name_stem(info: MediaInfo, media_id: str) -> str:
    """The file name up to the hash: the message id, or ``unknown-{media_id}`` without one."""
    message = segment(info.message_id, fallback="")
    if not message:
        return f"unknown-{segment(media_id)}"
    return file_segment(message)


def key_prefix(info: MediaInfo, media_id: str) -> str:
    """Everything of the key up to and including ``{message_id}-``: fixed before download.

    Depends only on the request's content, never on when it is handled, so
    every delivery of one media looks for it at the same place.

    Args:
        info: the media.
        media_id: its id (names the file when the message has no id).
    """
    return (
        f"cliente_{segment(info.client_id)}/instance_{segment(info.instance_id)}/"
        f"{segment(info.media_type.value)}/{date_folder(info)}/{name_stem(info, media_id)}-"
    )


def object_key(info: MediaInfo, media_id: str, sha256_hex: str) -> str:
    """The full object key of a media whose plaintext SHA-256 is ``sha256_hex``."""
    ext = extension(info.media_type, info.mimetype, info.file_name)
    return f"{key_prefix(info, media_id)}{sha256_hex[:12].lower()}.{ext}"


def content_disposition(info: MediaInfo) -> str:
    """The ``Content-Disposition`` stored with the media: an attachment with a safe name.

    See :func:`mediaflow.stored_content.attachment`; the message id names a
    media that came without a file name.
    """
    return attachment(info.media_type, info.mimetype, info.file_name, fallback=info.message_id)


def metadata_value(value: str | None) -> str:
    """Make a metadata value ASCII-safe and bounded (S3 sends metadata as HTTP headers)."""
    folded = unicodedata.normalize("NFKD", value or "").encode("ascii", "ignore").decode()
    printable = "".join(c if 0x20 <= ord(c) < 0x7F else "_" for c in folded)
    return printable.strip()[:MAX_METADATA_VALUE]


def object_metadata(
    info: MediaInfo, *, media_id: str, sha256_hex: str | None, fetch_path: str
) -> dict[str, str]:
    """User metadata stored with the object (no secrets, no links)."""
    values = {
        "media-id": media_id,
        "message-id": info.message_id,
        "mimetype": info.mimetype,
        "file-name": info.file_name,
        "fetch-path": fetch_path,
        "sha256": sha256_hex,
    }
    return {k: metadata_value(v) for k, v in values.items() if v}


__all__ = [
    "UNDATED",
    "content_disposition",
    "content_type",
    "date_folder",
    "extension",
    "file_segment",
    "key_prefix",
    "metadata_value",
    "name_stem",
    "object_key",
    "object_metadata",
    "segment",
]
