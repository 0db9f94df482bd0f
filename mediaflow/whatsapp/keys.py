"""WhatsApp media keys: the ``mediaKey`` of a message, expanded into its working keys.

A message's 32-byte ``mediaKey`` is expanded by HKDF-SHA256 (no salt, an
``info`` string per media type, 112 bytes) into the ``iv``, ``cipher_key``,
``mac_key`` and ``ref_key`` of its ``.enc`` file (whatsapp-media.md section 3).
Pure functions; no message ever contains key material.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mediaflow.errors import InvalidPayload
from mediaflow.events import MediaType

MEDIA_KEY_LENGTH = 32
"""Bytes in a WhatsApp ``mediaKey``."""


_EXPANDED_LENGTH = 112

_IMAGE_INFO = b"WhatsApp Image Keys"
_VIDEO_INFO = b"WhatsApp Video Keys"
_AUDIO_INFO = b"WhatsApp Audio Keys"
_DOCUMENT_INFO = b"WhatsApp Document Keys"

_INFO_BY_TYPE: dict[MediaType, bytes] = {
    MediaType.IMAGE: _IMAGE_INFO,
    MediaType.STICKER: _IMAGE_INFO,
    MediaType.VIDEO: _VIDEO_INFO,
    MediaType.AUDIO: _AUDIO_INFO,
    MediaType.DOCUMENT: _DOCUMENT_INFO,
}

# The finer kinds the detector may put in ``MediaInfo.media_variant`` (see the
# MediaInfo schema). They never change the key, but a variant that belongs to
# another type means the record is inconsistent, and decrypting it anyway
# would only fail later as a confusing MAC mismatch.
_VARIANTS_BY_TYPE: dict[MediaType, frozenset[str]] = {
    MediaType.IMAGE: frozenset(),
    MediaType.STICKER: frozenset({"animated"}),
    MediaType.VIDEO: frozenset({"gif", "ptv"}),
    MediaType.AUDIO: frozenset({"ptt"}),
    MediaType.DOCUMENT: frozenset(),
}


def hkdf_info(media_type: MediaType | str, variant: str | None = None) -> bytes:
    """Return the HKDF ``info`` string WhatsApp uses for a media type.

    Args:
        media_type: the media type (a :class:`MediaType` or its string value).
        variant: the finer kind (``gif``/``ptv`` for video, ``ptt`` for audio,
            ``animated`` for sticker), or ``None``. It does not change the info.

    Raises:
        InvalidPayload: the type is unknown or the variant does not belong to it.

    """
    kind = _media_type(media_type)
    if variant is not None and variant not in _VARIANTS_BY_TYPE[kind]:
        allowed = ", ".join(sorted(_VARIANTS_BY_TYPE[kind])) or "none"
        raise InvalidPayload(
            f"media variant {variant!r} is not valid for media type {kind.value!r} "
            f"(allowed: {allowed})"
        )
    return _INFO_BY_TYPE[kind]


def _media_type(media_type: MediaType | str) -> MediaType:
    try:
        return MediaType(media_type)
    except ValueError:
        known = ", ".join(t.value for t in MediaType)
        raise InvalidPayload(
            f"unknown media type {media_type!r}; expected one of {known}"
        ) from None


@dataclasses.dataclass(frozen=True, slots=True)
class MediaKeys:
    """The keys HKDF expands from a ``mediaKey``. Secret: the repr shows none."""

    iv: bytes = dataclasses.field(repr=False)
    cipher_key: bytes = dataclasses.field(repr=False)
    mac_key: bytes = dataclasses.field(repr=False)
    ref_key: bytes = dataclasses.field(repr=False)


def derive_media_keys(media_key: bytes, info: bytes) -> MediaKeys:
    """Expand a 32-byte ``mediaKey`` into iv, cipher, MAC and ref keys.

    HKDF-SHA256 with no salt (RFC 5869: a string of 32 zero bytes), ``info``
    from :func:`hkdf_info`, 112 bytes split 16/32/32/32.

    Args:
        media_key: the raw (base64-decoded) ``mediaKey``.
        info: the HKDF info string, see :func:`hkdf_info`.

    Raises:
        InvalidPayload: ``media_key`` is not 32 bytes.

    """
    _check_media_key(media_key)
    expanded = HKDF(
        algorithm=hashes.SHA256(), length=_EXPANDED_LENGTH, salt=None, info=info
    ).derive(bytes(media_key))
    return MediaKeys(
        iv=expanded[:16],
        cipher_key=expanded[16:48],
        mac_key=expanded[48:80],
        ref_key=expanded[80:112],
    )


def _check_media_key(media_key: bytes) -> None:
    if not isinstance(media_key, bytes | bytearray | memoryview):
        raise InvalidPayload(f"media key must be bytes, got {type(media_key).__name__}")
    if len(media_key) != MEDIA_KEY_LENGTH:
        raise InvalidPayload(f"media key must be {MEDIA_KEY_LENGTH} bytes, got {len(media_key)}")


def decode_b64_field(value: str, field: str, expected_len: int | None = None) -> bytes:
    """Decode a base64 payload field, standard or URL-safe, padded or not.

    Args:
        value: the base64 text. Never echoed in errors: it may be a secret.
        field: the field's name, used in error messages (e.g. ``"mediaKey"``).
        expected_len: the exact decoded length required, or ``None`` for any.

    Raises:
        InvalidPayload: not a string, not base64, or not ``expected_len`` bytes.

    """
    if not isinstance(value, str):
        raise InvalidPayload(f"{field} must be a base64 string, got {type(value).__name__}")
    text = value.strip().translate(_URLSAFE_TO_STANDARD).rstrip("=")
    if len(text) % 4 == 1:
        raise InvalidPayload(f"{field} is not valid base64 (impossible length)")
    try:
        decoded = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPayload(f"{field} is not valid base64") from None
    if expected_len is not None and len(decoded) != expected_len:
        raise InvalidPayload(f"{field} must decode to {expected_len} bytes, got {len(decoded)}")
    return decoded


_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


__all__ = ["MEDIA_KEY_LENGTH", "MediaKeys", "decode_b64_field", "derive_media_keys", "hkdf_info"]
