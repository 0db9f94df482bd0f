"""W-API (api.w-api.app) webhooks: routing fields and media (spec section 1).

``webhookReceived`` (a message received) and ``webhookDelivery`` (a message the
connected phone or the API sent, ``fromApi: true``) carry WAProto content in
``msgContent``; every other event carries no media.
"""

from __future__ import annotations

from typing import Any

from mediaflow.events import Provider
from mediaflow.providers._coerce import flag, text, timestamp, token
from mediaflow.providers._common import as_object, dig, event_category, required, required_object
from mediaflow.providers._types import EnvelopeFields, MessageContext, ParseResult
from mediaflow.providers._waproto import waproto_result

MESSAGE_EVENTS = frozenset({"webhookReceived", "webhookDelivery"})
STATUS_EVENTS = frozenset({"webhookStatus", "webhookConnected", "webhookDisconnected"})


def envelope_fields(payload: dict[str, Any]) -> EnvelopeFields:
    """Read the routing fields of a W-API webhook.

    Args:
        payload: the parsed JSON body.

    Returns:
        ``instanceId``, ``event``, ``messageId`` and ``chat.id`` (the last two when present).

    Raises:
        InvalidPayload: (``missing_fields``) no ``instanceId`` or ``event`` string;
            (``invalid_payload``) the body is not an object.

    """
    body = as_object(payload)
    return EnvelopeFields(
        instance_id=required(body.get("instanceId"), "instanceId"),
        event_type=required(body.get("event"), "event"),
        message_id=token(body.get("messageId")),
        chat_id=token(dig(body, "chat", "id")),
    )


def find_media(payload: dict[str, Any], *, client_id: str, instance_id: str) -> ParseResult:
    """Find the media of a W-API webhook.

    Media id rule: the first 32 hex characters of
    ``sha256("wapi|<instance_id>|<messageId>|<content_path>")``, ``content_path``
    being relative to ``msgContent`` (e.g. ``ephemeralMessage.message.imageMessage``);
    a redelivery, or the same message as ``webhookDelivery``, gets the same id.
    Without ``messageId``, ``"sha256:<fileSha256>"`` stands in; without both the
    media is a problem (see :func:`~mediaflow.providers._common.derive_media_id`).

    Args:
        payload: the parsed JSON body.
        client_id: the client the webhook was received for.
        instance_id: the instance the receiver recorded (authoritative over the body's).

    Returns:
        The category, the media found and the media that can never be downloaded.

    Raises:
        InvalidPayload: the body is not an object, has no ``event``, or a message event
            lacks ``msgContent`` or ``chat.id``.

    """
    body = as_object(payload)
    event = required(body.get("event"), "event")
    if event not in MESSAGE_EVENTS:
        return ParseResult(category=event_category(event, STATUS_EVENTS))
    content = required_object(body.get("msgContent"), "msgContent")
    return waproto_result(
        _context(body, event, client_id=client_id, instance_id=instance_id), content
    )


def _context(
    body: dict[str, Any], event: str, *, client_id: str, instance_id: str
) -> MessageContext:
    return MessageContext(
        provider=Provider.WAPI,
        client_id=client_id,
        instance_id=instance_id,
        message_id=token(body.get("messageId")),
        chat_id=required(dig(body, "chat", "id"), "chat.id"),
        sender_id=token(dig(body, "sender", "id")),
        sender_name=text(dig(body, "sender", "pushName")),
        # a delivery is always a message this instance sent, even if fromMe is left out
        from_me=flag(body.get("fromMe")) or event == "webhookDelivery",
        is_group=flag(body.get("isGroup")),
        timestamp=timestamp(body.get("moment"), per_second=1),
    )
