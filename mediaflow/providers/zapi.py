"""Z-API webhooks: routing fields and media (spec section 4).

``ReceivedCallback`` carries one message; its media is a plain, already
decrypted link (``image.imageUrl``, ...), kept by Z-API for 30 days, with no
media key. Content paths are the media field names (``image``, ``document``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaflow.errors import ErrorKind, InvalidPayload
from mediaflow.events import MediaSource, MediaType, Provider
from mediaflow.providers._coerce import flag, text, timestamp, token
from mediaflow.providers._common import as_object, event_category, message_result, required
from mediaflow.providers._types import (
    ContentItem,
    EnvelopeFields,
    MediaDraft,
    MessageContext,
    ParseResult,
)

MESSAGE_EVENTS = frozenset({"ReceivedCallback"})
STATUS_EVENTS = frozenset(
    {
        "MessageStatusCallback",
        "DeliveryCallback",
        "ConnectedCallback",
        "DisconnectedCallback",
    }
)
# media field -> (media type, field holding its link)
MEDIA_FIELDS: Mapping[str, tuple[MediaType, str]] = {
    "image": (MediaType.IMAGE, "imageUrl"),
    "video": (MediaType.VIDEO, "videoUrl"),
    "audio": (MediaType.AUDIO, "audioUrl"),
    "document": (MediaType.DOCUMENT, "documentUrl"),
    "sticker": (MediaType.STICKER, "stickerUrl"),
}


def envelope_fields(payload: dict[str, Any]) -> EnvelopeFields:
    """Read the routing fields of a Z-API webhook.

    Args:
        payload: the parsed JSON body.

    Returns:
        ``instanceId``, ``type``, ``messageId`` and ``phone`` (the chat; the last two when
        present).

    Raises:
        InvalidPayload: (``missing_fields``) no ``instanceId`` or ``type`` string;
            (``invalid_payload``) the body is not an object.

    """
    body = as_object(payload)
    return EnvelopeFields(
        instance_id=required(body.get("instanceId"), "instanceId"),
        event_type=required(body.get("type"), "type"),
        message_id=token(body.get("messageId")),
        chat_id=token(body.get("phone")),
    )


def find_media(payload: dict[str, Any], *, client_id: str, instance_id: str) -> ParseResult:
    """Find the media of a Z-API webhook.

    Media id rule: the first 32 hex characters of
    ``sha256("zapi|<instance_id>|<messageId>|<field>")``, ``field`` being the media
    field name (``image``, ``document``, ...), which is also the ``content_path``.
    Z-API sends no file hash, so a media without ``messageId`` is reported as a
    problem (see :func:`~mediaflow.providers._common.derive_media_id`).

    Args:
        payload: the parsed JSON body.
        client_id: the client the webhook was received for.
        instance_id: the instance the receiver recorded (authoritative over the body's).

    Returns:
        The category, the media found and the media that can never be downloaded.

    Raises:
        InvalidPayload: the body is not an object, has no ``type``, or a
            ``ReceivedCallback`` lacks ``phone``.

    """
    body = as_object(payload)
    event = required(body.get("type"), "type")
    if event not in MESSAGE_EVENTS:
        return ParseResult(category=event_category(event, STATUS_EVENTS))
    items = [ContentItem(key, key, body[key]) for key in MEDIA_FIELDS if body.get(key) is not None]
    has_text = isinstance(body.get("text"), Mapping)
    ctx = _context(body, client_id=client_id, instance_id=instance_id)
    return message_result(ctx, items, read_media, has_text=has_text)


def read_media(item: ContentItem) -> MediaDraft:
    """Read one Z-API media object (``image``, ``audio``, ...).

    Args:
        item: the media field name and its raw value.

    Returns:
        The media's fields; the source is the plain link, without media key.

    Raises:
        InvalidPayload: not an object, or without its link.

    """
    media_type, url_field = MEDIA_FIELDS[item.key]
    obj = item.value
    if not isinstance(obj, Mapping):
        raise InvalidPayload(f"{item.path} is not an object", kind=ErrorKind.INVALID_PAYLOAD)
    url = token(obj.get(url_field))
    if url is None:
        raise InvalidPayload(
            f"{item.path}.{url_field} is missing; there is nothing to download",
            kind=ErrorKind.MISSING_FIELDS,
        )
    return MediaDraft(
        media_type=media_type,
        source=MediaSource(url=url),
        variant="ptt" if media_type is MediaType.AUDIO and flag(obj.get("ptt")) else None,
        mimetype=token(obj.get("mimeType")),
        file_name=text(obj.get("fileName")),
        caption=text(obj.get("caption")),
    )


def _context(body: Mapping[str, Any], *, client_id: str, instance_id: str) -> MessageContext:
    chat_id = required(body.get("phone"), "phone")
    is_group = flag(body.get("isGroup"))
    return MessageContext(
        provider=Provider.ZAPI,
        client_id=client_id,
        instance_id=instance_id,
        message_id=token(body.get("messageId")),
        chat_id=chat_id,
        sender_id=token(body.get("participantPhone")) if is_group else chat_id,
        sender_name=text(body.get("senderName")),
        from_me=flag(body.get("fromMe")),
        is_group=is_group,
        timestamp=timestamp(body.get("momment"), per_second=1000),
    )
