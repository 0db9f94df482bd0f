"""Evolution API v2 webhooks: routing fields and media (spec section 4).

``messages.upsert`` carries one message in ``data``: its WAProto content in
``data.message``, its identity in ``data.key``. Events are matched case- and
separator-insensitively (``MESSAGES_UPSERT`` is the same event).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaflow.events import Provider
from mediaflow.providers._coerce import flag, text, timestamp, token
from mediaflow.providers._common import as_object, dig, event_category, required, required_object
from mediaflow.providers._types import EnvelopeFields, MessageContext, ParseResult
from mediaflow.providers._waproto import waproto_result

MESSAGE_EVENTS = frozenset({"messages.upsert"})
STATUS_EVENTS = frozenset({"messages.update", "connection.update", "qrcode.updated"})
GROUP_SUFFIX = "@g.us"


def envelope_fields(payload: dict[str, Any]) -> EnvelopeFields:
    """Read the routing fields of an Evolution webhook.

    Args:
        payload: the parsed JSON body.

    Returns:
        ``instance``, ``event``, ``data.key.id`` and ``data.key.remoteJid`` (the last two
        when present).

    Raises:
        InvalidPayload: (``missing_fields``) no ``instance`` or ``event`` string;
            (``invalid_payload``) the body is not an object.

    """
    body = as_object(payload)
    return EnvelopeFields(
        instance_id=required(body.get("instance"), "instance"),
        event_type=required(body.get("event"), "event"),
        message_id=token(dig(body, "data", "key", "id")),
        chat_id=token(dig(body, "data", "key", "remoteJid")),
    )


def find_media(payload: dict[str, Any], *, client_id: str, instance_id: str) -> ParseResult:
    """Find the media of an Evolution webhook.

    Media id rule: the first 32 hex characters of
    ``sha256("evolution|<instance_id>|<data.key.id>|<content_path>")``,
    ``content_path`` being relative to ``data.message`` (the same paths as under
    W-API). Without ``data.key.id``, ``"sha256:<fileSha256>"`` stands in; without
    both the media is a problem (see :func:`~mediaflow.providers._common.derive_media_id`).

    Args:
        payload: the parsed JSON body.
        client_id: the client the webhook was received for.
        instance_id: the instance the receiver recorded (authoritative over the body's).

    Returns:
        The category, the media found and the media that can never be downloaded.

    Raises:
        InvalidPayload: the body is not an object, has no ``event``, or ``messages.upsert``
            lacks ``data``, ``data.message`` or ``data.key.remoteJid``.

    """
    body = as_object(payload)
    event = required(body.get("event"), "event").lower().replace("_", ".")
    if event not in MESSAGE_EVENTS:
        return ParseResult(category=event_category(event, STATUS_EVENTS))
    data = required_object(body.get("data"), "data")
    content = required_object(data.get("message"), "data.message")
    return waproto_result(_context(data, client_id=client_id, instance_id=instance_id), content)


def _context(data: Mapping[str, Any], *, client_id: str, instance_id: str) -> MessageContext:
    chat_id = required(dig(data, "key", "remoteJid"), "data.key.remoteJid")
    is_group = chat_id.endswith(GROUP_SUFFIX)
    participant = token(dig(data, "key", "participant")) or token(data.get("participant"))
    return MessageContext(
        provider=Provider.EVOLUTION,
        client_id=client_id,
        instance_id=instance_id,
        message_id=token(dig(data, "key", "id")),
        chat_id=chat_id,
        sender_id=participant if is_group else chat_id,
        sender_name=text(data.get("pushName")),
        from_me=flag(dig(data, "key", "fromMe")),
        is_group=is_group,
        timestamp=timestamp(data.get("messageTimestamp"), per_second=1),
    )
