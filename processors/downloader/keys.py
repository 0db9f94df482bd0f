"""Where a media lands in the bucket, and the metadata stored with it. Pure.

Key layout (the seed system's, made collision-proof by the hash)::

    cliente_{client}/instance_{instance}/{media_type}/{yyyy}/{mm}/{dd}/{message_id}-{sha12}.{ext}

Every segment comes from a provider payload, so every segment is sanitized:
no ``/``, no ``..``, no NUL, control or bidi characters, bounded length. The
date is the message's own timestamp (UTC), else the time it was detected, so a
retry a day later still lands in the same folder. The extension, the stored
``Content-Type`` and the ``Content-Disposition: attachment`` come from
:mod:`mediaflow.stored_content`: nothing a browser would render or run.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

from mediaflow.events import MediaInfo
from mediaflow.stored_content import attachment, content_type, extension

MAX_SEGMENT = 80
MAX_METADATA_VALUE = 256

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


def key_prefix(info: MediaInfo, detected_at: datetime) -> str:
    """Everything of the key up to and including ``{message_id}-``: fixed before download.

    Args:
        info: the media.
        detected_at: when the media was detected; used when the message has no timestamp.
    """
    moment = info.message_timestamp or detected_at
    day = moment.astimezone(UTC) if moment.tzinfo else moment
    return (
        f"cliente_{segment(info.client_id)}/instance_{segment(info.instance_id)}/"
        f"{segment(info.media_type.value)}/{day:%Y/%m/%d}/{file_segment(info.message_id)}-"
    )


def object_key(info: MediaInfo, detected_at: datetime, sha256_hex: str) -> str:
    """The full object key of a media whose plaintext SHA-256 is ``sha256_hex``."""
    ext = extension(info.media_type, info.mimetype, info.file_name)
    return f"{key_prefix(info, detected_at)}{sha256_hex[:12].lower()}.{ext}"


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
    "content_disposition",
    "content_type",
    "extension",
    "file_segment",
    "key_prefix",
    "metadata_value",
    "object_key",
    "object_metadata",
    "segment",
]
