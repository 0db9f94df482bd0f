"""The WAProto content walk: media found directly or in wrappers, at any depth.

Quoted messages (``contextInfo.quotedMessage``) are never entered: they are
not new media.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from mediaflow.errors import ErrorKind, InvalidPayload
from mediaflow.events import MediaSource, MediaType
from mediaflow.providers._coerce import digest32, flag, length, text, token
from mediaflow.providers._common import dig, message_result
from mediaflow.providers._types import ContentItem, MediaDraft, MessageContext, ParseResult

MEDIA_KEYS: Mapping[str, MediaType] = {
    "imageMessage": MediaType.IMAGE,
    "videoMessage": MediaType.VIDEO,
    "ptvMessage": MediaType.VIDEO,
    "audioMessage": MediaType.AUDIO,
    "documentMessage": MediaType.DOCUMENT,
    "stickerMessage": MediaType.STICKER,
}
WRAPPER_KEYS = frozenset(
    {
        "ephemeralMessage",
        "viewOnceMessage",
        "viewOnceMessageV2",
        "viewOnceMessageV2Extension",
        "documentWithCaptionMessage",
        "editedMessage",
    }
)
TEXT_KEYS = frozenset({"conversation", "extendedTextMessage"})
MAX_DEPTH = 32
"""Wrappers nested deeper than this are reported as a problem instead of walked."""

# media key -> (boolean field, variant it selects); ptvMessage is always "ptv"
_VARIANT_FLAGS = {
    "videoMessage": ("gifPlayback", "gif"),
    "audioMessage": ("ptt", "ptt"),
    "stickerMessage": ("isAnimated", "animated"),
}


def walk_content(
    content: Mapping[str, Any], prefix: str = "", depth: int = 0
) -> Iterator[ContentItem]:
    """Yield the media and text keys of WAProto message content, unwrapping wrappers.

    Only wrapper keys are entered, so ``contextInfo.quotedMessage`` (a quoted,
    already-delivered message) is never visited. A wrapper beyond
    :data:`MAX_DEPTH` is yielded as an item itself, for the reader to report.

    Args:
        content: a WAProto ``Message`` object (W-API ``msgContent``, Evolution ``data.message``).
        prefix: the dotted path of ``content`` inside the message, ending in ``.``.
        depth: how many wrappers enclose ``content``.

    Yields:
        One item per media, text or too-deep wrapper key, in document order.

    """
    for key, value in content.items():
        if value is None:
            continue
        if key in MEDIA_KEYS or key in TEXT_KEYS:
            yield ContentItem(f"{prefix}{key}", key, value)
        elif key in WRAPPER_KEYS and isinstance(inner := dig(value, "message"), Mapping):
            if depth >= MAX_DEPTH:
                yield ContentItem(f"{prefix}{key}", key, value)
            else:
                yield from walk_content(inner, f"{prefix}{key}.message.", depth + 1)


def waproto_result(ctx: MessageContext, content: Mapping[str, Any]) -> ParseResult:
    """Find and read every media of WAProto message content.

    Args:
        ctx: the message-level facts.
        content: the WAProto ``Message`` object.

    Returns:
        The parse result; per-media problems are inside, never raised.

    """
    items = list(walk_content(content))
    return message_result(
        ctx,
        (item for item in items if item.key not in TEXT_KEYS),
        read_waproto_media,
        has_text=any(item.key in TEXT_KEYS for item in items),
    )


def read_waproto_media(item: ContentItem) -> MediaDraft:
    """Read one WAProto media object (``imageMessage``, ``audioMessage``, ...).

    Args:
        item: a media item from :func:`walk_content` (or a too-deep wrapper).

    Returns:
        The media's fields, hashes as canonical base64.

    Raises:
        InvalidPayload: not an object, nested too deep, no ``url`` nor ``directPath``,
            no ``mediaKey``, or a key/hash that is not base64 of 32 bytes.

    """
    if item.key in WRAPPER_KEYS:
        raise InvalidPayload(
            f"{item.path}: wrappers nested deeper than {MAX_DEPTH} levels",
            kind=ErrorKind.INVALID_PAYLOAD,
        )
    obj = item.value
    if not isinstance(obj, Mapping):
        raise InvalidPayload(f"{item.path} is not an object", kind=ErrorKind.INVALID_PAYLOAD)
    return MediaDraft(
        media_type=MEDIA_KEYS[item.key],
        source=_waproto_source(obj, item.path),
        variant=_variant(item.key, obj),
        mimetype=token(obj.get("mimetype")),
        file_name=text(obj.get("fileName")),
        declared_length=length(obj.get("fileLength")),
        file_sha256=digest32(obj.get("fileSha256"), f"{item.path}.fileSha256"),
        caption=text(obj.get("caption")),
    )


def _variant(key: str, obj: Mapping[str, Any]) -> str | None:
    if key == "ptvMessage":
        return "ptv"
    field, variant = _VARIANT_FLAGS.get(key, ("", None))
    return variant if field and flag(obj.get(field)) else None


def _waproto_source(obj: Mapping[str, Any], path: str) -> MediaSource:
    url, direct_path = token(obj.get("url")), token(obj.get("directPath"))
    if url is None and direct_path is None:
        raise InvalidPayload(
            f"{path} has neither url nor directPath; there is nothing to download",
            kind=ErrorKind.MISSING_FIELDS,
        )
    media_key = digest32(obj.get("mediaKey"), f"{path}.mediaKey")
    if media_key is None:
        raise InvalidPayload(
            f"{path}.mediaKey is missing; the media cannot be decrypted",
            kind=ErrorKind.MISSING_FIELDS,
        )
    return MediaSource(
        media_key=media_key,
        file_enc_sha256=digest32(obj.get("fileEncSha256"), f"{path}.fileEncSha256"),
        direct_path=direct_path,
        url=url,
    )
