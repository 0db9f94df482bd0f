"""Readers of untrusted JSON values: text, flags, numbers, lengths, timestamps, digests.

Each accepts any value and returns a typed value or ``None``; digests raise
:class:`~mediaflow.errors.InvalidPayload` naming the field (never echoing it).
Strings are made safe for UTF-8 (lone surrogates become U+FFFD) so the Avro
codec downstream can always encode them.
"""

from __future__ import annotations

import base64
import math
import re
from datetime import UTC, datetime, timedelta

from mediaflow.errors import ErrorKind, InvalidPayload
from mediaflow.text import utf8_safe

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
    return utf8_safe(value)


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
