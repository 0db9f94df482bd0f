"""Provider adapters: pure functions from webhook JSON to routing fields and media.

Each provider module (:mod:`.wapi`, :mod:`.evolution`, :mod:`.zapi`) offers
``envelope_fields(payload)`` for the webhook receiver and
``find_media(payload, *, client_id, instance_id)`` for the detector; the two
functions here pick the module from a provider name.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from mediaflow.errors import ErrorKind, InvalidPayload
from mediaflow.events import Provider
from mediaflow.providers import evolution, wapi, zapi
from mediaflow.providers._types import (
    Category,
    EnvelopeFields,
    FoundMedia,
    InvalidMedia,
    ParseResult,
)

_ENVELOPE: MappingProxyType[Provider, Callable[[dict[str, Any]], EnvelopeFields]] = (
    MappingProxyType(
        {
            Provider.WAPI: wapi.envelope_fields,
            Provider.EVOLUTION: evolution.envelope_fields,
            Provider.ZAPI: zapi.envelope_fields,
        }
    )
)
_FIND_MEDIA: MappingProxyType[Provider, Callable[..., ParseResult]] = MappingProxyType(
    {
        Provider.WAPI: wapi.find_media,
        Provider.EVOLUTION: evolution.find_media,
        Provider.ZAPI: zapi.find_media,
    }
)


def read_envelope(provider: Provider | str, payload: dict[str, Any]) -> EnvelopeFields:
    """Read the routing fields of a webhook from ``provider``.

    Args:
        provider: a :class:`~mediaflow.events.Provider` or its value (``"wapi"``).
        payload: the parsed JSON body.

    Returns:
        The instance id, event type, and message and chat ids when present.

    Raises:
        InvalidPayload: (``unsupported``) unknown provider; (``missing_fields``) no
            instance id or event type; (``invalid_payload``) the body is not an object.

    """
    return _ENVELOPE[_provider(provider)](payload)


def parse_webhook(
    provider: Provider | str, payload: dict[str, Any], *, client_id: str, instance_id: str
) -> ParseResult:
    """Find the media of a webhook from ``provider``.

    Args:
        provider: a :class:`~mediaflow.events.Provider` or its value (``"wapi"``).
        payload: the parsed JSON body.
        client_id: the client the webhook was received for.
        instance_id: the instance the receiver recorded.

    Returns:
        The category, the media found and the media that can never be downloaded
        (per-media problems are returned, not raised).

    Raises:
        InvalidPayload: unknown provider (``unsupported``) or an envelope-level problem.

    """
    return _FIND_MEDIA[_provider(provider)](payload, client_id=client_id, instance_id=instance_id)


def _provider(value: Provider | str) -> Provider:
    if isinstance(value, Provider):  # the receiver's case, on every webhook: no enum lookup
        return value
    try:
        return Provider(value)
    except ValueError as exc:
        known = ", ".join(sorted(member.value for member in Provider))
        raise InvalidPayload(
            f"unknown provider {value!r}; expected one of {known}", kind=ErrorKind.UNSUPPORTED
        ) from exc


__all__ = [
    "Category",
    "EnvelopeFields",
    "FoundMedia",
    "InvalidMedia",
    "ParseResult",
    "parse_webhook",
    "read_envelope",
]
