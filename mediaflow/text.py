r"""Text from outside, made safe for every place mediaflow writes it.

Strings that come from providers and clients may hold what UTF-8 cannot
encode: a lone surrogate. JSON's ``"\ud800"`` escape decodes to one, and
aiohttp decodes header bytes that are not UTF-8 into them
(``surrogateescape``). Every writer that encodes text (Kafka headers, Avro
strings, log lines, JSON answers) would raise on it, and a raise while a
failure is reported loses the report. The rule, kept here once: a lone
surrogate becomes U+FFFD, the replacement character; everything else is kept.

NUL and other control characters are valid UTF-8: Kafka headers and Avro
carry them unchanged, the JSON encoders escape them, and the one store that
cannot hold NUL (PostgreSQL text) replaces it where rows are written
(:mod:`mediaflow.storage.projection`).
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
_SURROGATES = re.compile("[\ud800-\udfff]")


def utf8_safe(text: str) -> str:
    """Return ``text`` with every lone surrogate replaced by U+FFFD (``text`` itself if none)."""
    if text.isascii():  # ids and most messages: known in O(1), no copy
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATES.sub(REPLACEMENT, text)
    return text


def to_utf8(text: str) -> bytes:
    """Encode ``text`` as UTF-8, lone surrogates as U+FFFD; never raises."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATES.sub(REPLACEMENT, text).encode("utf-8")


__all__ = ["REPLACEMENT", "to_utf8", "utf8_safe"]
