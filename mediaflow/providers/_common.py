"""What every provider adapter shares: result types, coercion, the WAProto walk.

Provider payloads are untrusted JSON. Every reader here accepts any value and
returns either a typed value, ``None`` (absent or unusable), or raises
:class:`~mediaflow.errors.InvalidPayload`; nothing else escapes. Strings are
made safe for UTF-8 (lone surrogates, legal in JSON, become U+FFFD) so the
Avro codec downstream can always encode them.

Per-media problems (no url, a bad media key) never raise out of an adapter:
they become :class:`InvalidMedia` entries of the :class:`ParseResult`, so one
broken media does not hide its good siblings. Only envelope-level problems
(not an object, no event type, no chat) raise.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from mediaflow.errors import ErrorKind, InvalidPayload
from mediaflow.events import MediaInfo, MediaSource, MediaType, Provider

# --------------------------------------------------------------------------- results


class Category(StrEnum):
    """What kind of webhook was parsed; only ``MEDIA`` carries media or problems."""

    MEDIA = "media"
    TEXT = "text"
    STATUS = "status"
    OTHER = "other"


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvelopeFields:
    """The cheap routing fields the webhook receiver records for every request."""

    instance_id: str
    event_type: str
    message_id: str | None = None
    chat_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FoundMedia:
    """One downloadable media; ``content_path`` locates it in the message content."""

    media_id: str
    info: MediaInfo
    source: MediaSource
    content_path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InvalidMedia:
    """A media that no download can ever fetch; the detector dead-letters it.

    ``media_id`` is set when the message id allows deriving one.
    """

    content_path: str
    error: InvalidPayload
    media_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParseResult:
    """Everything the detector needs from one webhook."""

    category: Category
    media: tuple[FoundMedia, ...] = ()
    problems: tuple[InvalidMedia, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageContext:
    """Message-level facts shared by every media of one webhook (adapter-internal)."""

    provider: Provider
    client_id: str
    instance_id: str
    message_id: str | None
    chat_id: str
    sender_id: str | None = None
    sender_name: str | None = None
    from_me: bool = False
    is_group: bool = False
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaDraft:
    """The per-media fields an adapter read from one media object (adapter-internal)."""

    media_type: MediaType
    source: MediaSource
    variant: str | None = None
    mimetype: str | None = None
    file_name: str | None = None
    declared_length: int | None = None
    file_sha256: str | None = None
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class ContentItem:
    """One interesting key of a message's content: its dotted path, key and raw value."""

    path: str
    key: str
    value: Any


# --------------------------------------------------------------------------- coercion

_SURROGATES = re.compile("[\ud800-\udfff]")
_INTEGER = re.compile(r"[+-]?[0-9]{1,30}")
_DECIMAL = re.compile(r"[+-]?[0-9]{1,30}\.[0-9]{1,30}")
_MAX_LONG = 2**63 - 1  # Avro long
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def text(value: object) -> str | None:
    """Read a free-text value (caption, name) as given.

    Args:
        value: any JSON value.

    Returns:
        The string, lone surrogates replaced by U+FFFD; ``None`` unless a non-empty string.

    """
    if not isinstance(value, str) or not value:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", value)
    return value


def token(value: object) -> str | None:
    """Read an identifier-like value (id, url, mimetype, base64) with whitespace stripped.

    Args:
        value: any JSON value.

    Returns:
        The stripped string; ``None`` unless a string with non-blank content.

    """
    found = text(value)
    if found is None:
        return None
    return found.strip() or None


def flag(value: object) -> bool:
    """Read a boolean that may arrive as ``true``, ``"true"`` or ``1``.

    Args:
        value: any JSON value.

    Returns:
        ``True`` only for an explicit true value; anything else is ``False``.

    """
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return value is True or (type(value) is int and value == 1)


def number(value: object) -> int | float | None:
    """Read a number that may arrive as a JSON number or a decimal string.

    Args:
        value: any JSON value.

    Returns:
        An int or a finite float; ``None`` for booleans, garbage or non-ASCII digits.

    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        stripped = value.strip()
        if _INTEGER.fullmatch(stripped):
            return int(stripped)
        if _DECIMAL.fullmatch(stripped):
            return float(stripped)
    return None


def length(value: object) -> int | None:
    """Read a declared byte length (``fileLength``).

    Args:
        value: any JSON value.

    Returns:
        A whole number in Avro's long range; ``None`` when unparseable, fractional or negative,
        since a wrong declared length must not stop a download.

    """
    found = number(value)
    if found is None or not 0 <= found <= _MAX_LONG:
        return None
    if isinstance(found, float):
        return int(found) if found.is_integer() else None
    return found


def timestamp(value: object, *, per_second: int) -> datetime | None:
    """Read a Unix timestamp as an aware UTC datetime at millisecond precision.

    Args:
        value: any JSON value.
        per_second: 1 when the value counts seconds, 1000 when it counts milliseconds.

    Returns:
        The datetime; ``None`` when unparseable, not positive or out of range.

    """
    found = number(value)
    if found is None or found <= 0:
        return None
    try:
        millis = (
            found * 1000 // per_second
            if isinstance(found, int)
            else round(found * 1000 / per_second)
        )
        return _EPOCH + timedelta(milliseconds=millis)
    except (OverflowError, ValueError):
        return None


def digest32(value: object, where: str) -> str | None:
    """Read a base64 value that must decode to exactly 32 bytes (media key, SHA-256).

    Args:
        value: any JSON value.
        where: the dotted path of the field, for the error message.

    Returns:
        Canonical standard base64 (equal to the input when it already was); ``None`` if absent.

    Raises:
        InvalidPayload: present but not base64 of 32 bytes. The message never holds the value.

    """
    if value is None or value == "":
        return None
    encoded = token(value) if isinstance(value, str) else None
    if encoded is None:
        raise InvalidPayload(f"{where} is not a base64 string", kind=ErrorKind.INVALID_PAYLOAD)
    try:
        raw = base64.b64decode(_pad(encoded.replace("-", "+").replace("_", "/")), validate=True)
    except ValueError as exc:
        raise InvalidPayload(
            f"{where} is not valid base64", kind=ErrorKind.INVALID_PAYLOAD
        ) from exc
    if len(raw) != 32:
        raise InvalidPayload(
            f"{where} decodes to {len(raw)} bytes, expected 32", kind=ErrorKind.INVALID_PAYLOAD
        )
    return base64.b64encode(raw).decode("ascii")


def _pad(encoded: str) -> str:
    return encoded + "=" * (-len(encoded) % 4)


# --------------------------------------------------------------------------- envelope reading


def as_object(payload: object) -> Mapping[str, Any]:
    """Check that a payload is a JSON object.

    Args:
        payload: the parsed webhook body.

    Returns:
        The payload itself.

    Raises:
        InvalidPayload: (``invalid_payload``) it is a list, string, number or null.

    """
    if not isinstance(payload, Mapping):
        raise InvalidPayload("payload is not a JSON object", kind=ErrorKind.INVALID_PAYLOAD)
    return payload


def dig(value: object, *keys: str) -> Any:
    """Follow ``keys`` through nested objects.

    Args:
        value: any JSON value.
        *keys: the keys to follow, outermost first.

    Returns:
        The value found, or ``None`` as soon as a step is not an object.

    """
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def required(value: object, field: str) -> str:
    """Read a required identifier.

    Args:
        value: any JSON value.
        field: the field's dotted name as the provider spells it, for the message.

    Returns:
        The stripped string.

    Raises:
        InvalidPayload: (``missing_fields``) absent, blank or not a string.

    """
    found = token(value)
    if found is None:
        raise InvalidPayload(
            f"field '{field}' is missing or not a string", kind=ErrorKind.MISSING_FIELDS
        )
    return found


def required_object(value: object, field: str) -> Mapping[str, Any]:
    """Read a required nested object.

    Args:
        value: any JSON value.
        field: the field's dotted name as the provider spells it, for the message.

    Returns:
        The object.

    Raises:
        InvalidPayload: (``missing_fields``) absent or not an object.

    """
    if not isinstance(value, Mapping):
        raise InvalidPayload(
            f"field '{field}' is missing or not an object", kind=ErrorKind.MISSING_FIELDS
        )
    return value


def event_category(event: str, status_events: frozenset[str]) -> Category:
    """Classify an event that carries no message.

    Args:
        event: the provider's event type.
        status_events: the provider's delivery/read-status and connection events.

    Returns:
        ``STATUS`` for those, ``OTHER`` for anything else.

    """
    return Category.STATUS if event in status_events else Category.OTHER


# --------------------------------------------------------------------------- media ids and results


def derive_media_id(
    provider: Provider,
    instance_id: str,
    message_id: str | None,
    content_path: str,
    file_sha256: str | None = None,
) -> str:
    """Derive the stable id of one media.

    Rule: the first 32 hex characters of the SHA-256 of
    ``"<provider>|<instance_id>|<message_id>|<content_path>"``. The same webhook
    delivered twice, or received once as ``webhookReceived`` and again as a
    redelivery, yields the same id; two media of one message differ by path.
    Without a message id, ``"sha256:<fileSha256>"`` stands in for it.

    Args:
        provider: the webhook's provider.
        instance_id: the provider instance the webhook came through.
        message_id: the WhatsApp message id, if the payload had one.
        content_path: where the media sits in the message content.
        file_sha256: base64 SHA-256 of the plaintext, if known.

    Returns:
        32 lowercase hex characters.

    Raises:
        InvalidPayload: (``missing_fields``) neither a message id nor a file hash.

    """
    anchor = message_id or (f"sha256:{file_sha256}" if file_sha256 else None)
    if anchor is None:
        raise InvalidPayload(
            f"{content_path}: no message id and no fileSha256 to identify the media",
            kind=ErrorKind.MISSING_FIELDS,
        )
    seed = f"{provider.value}|{instance_id}|{anchor}|{content_path}"
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()[:32]


def message_result(
    ctx: MessageContext,
    items: Iterable[ContentItem],
    read: Callable[[ContentItem], MediaDraft],
    *,
    has_text: bool,
) -> ParseResult:
    """Read every media item of one message and classify the message.

    Args:
        ctx: the message-level facts.
        items: the media candidates found in the message content.
        read: the adapter's reader for one item; raises InvalidPayload for a broken media.
        has_text: whether the message holds text.

    Returns:
        ``MEDIA`` with the media and problems when there are any, else ``TEXT`` or ``OTHER``.

    """
    media: list[FoundMedia] = []
    problems: list[InvalidMedia] = []
    for item in items:
        try:
            media.append(_found(ctx, read(item), item.path))
        except InvalidPayload as exc:
            problems.append(
                InvalidMedia(
                    content_path=item.path, error=exc, media_id=_id_or_none(ctx, item.path)
                )
            )
    if media or problems:
        return ParseResult(category=Category.MEDIA, media=tuple(media), problems=tuple(problems))
    return ParseResult(category=Category.TEXT if has_text else Category.OTHER)


def _id_or_none(ctx: MessageContext, path: str) -> str | None:
    if ctx.message_id is None:
        return None
    return derive_media_id(ctx.provider, ctx.instance_id, ctx.message_id, path)


def _found(ctx: MessageContext, draft: MediaDraft, path: str) -> FoundMedia:
    info = MediaInfo(
        provider=ctx.provider.value,
        client_id=ctx.client_id,
        instance_id=ctx.instance_id,
        message_id=ctx.message_id or "",
        chat_id=ctx.chat_id,
        sender_id=ctx.sender_id,
        sender_name=ctx.sender_name,
        from_me=ctx.from_me,
        is_group=ctx.is_group,
        media_type=draft.media_type,
        media_variant=draft.variant,
        mimetype=draft.mimetype,
        file_name=draft.file_name,
        declared_length=draft.declared_length,
        file_sha256=draft.file_sha256,
        caption=draft.caption,
        message_timestamp=ctx.timestamp,
    )
    media_id = derive_media_id(
        ctx.provider, ctx.instance_id, ctx.message_id, path, draft.file_sha256
    )
    return FoundMedia(media_id=media_id, info=info, source=draft.source, content_path=path)


# --------------------------------------------------------------------------- WAProto content

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
