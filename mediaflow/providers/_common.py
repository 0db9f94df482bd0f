"""What every provider adapter shares: envelope reading, media ids, result assembly.

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

import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mediaflow.errors import ErrorKind, InvalidPayload
from mediaflow.events import MediaInfo, Provider
from mediaflow.providers._coerce import token
from mediaflow.providers._types import (
    Category,
    ContentItem,
    FoundMedia,
    InvalidMedia,
    MediaDraft,
    MessageContext,
    ParseResult,
)


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
