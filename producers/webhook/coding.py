"""Content codings of a webhook body, decoded here, a bounded piece at a time.

Left to itself, aiohttp inflates a compressed body as its bytes arrive: before
the handler has looked at the caller's secret, and faster than anything can
count. A kilobyte of gzip is a megabyte of memory that way, for anyone who can
open a connection. The receiver turns that off (``auto_decompress=False`` in
:func:`~mediaflow.producers.webhook.app.build_app`) and inflates here instead, once the
caller is known, at most :data:`PIECE_BYTES` at a time: each piece is
counted against the body's size limit and the in-flight budget before the next
one is made.

Decoded: no coding (or ``identity``), ``gzip`` (alias ``x-gzip``, several
members allowed) and ``deflate`` (zlib-wrapped as RFC 9110 defines it, or raw,
as some senders mean it). Anything else, codings stacked on one another
included, is refused with 415 and ``Accept-Encoding`` (RFC 9110, 15.5.16).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Protocol

from mediaflow.producers.webhook.validation import Rejected, unreadable_body

PIECE_BYTES = 64 * 1024
"""The most a decoder inflates before the caller takes what it gave."""

ACCEPTED_CODINGS = "gzip, deflate"
"""The ``Accept-Encoding`` a 415 answers with."""

_ZLIB_CODINGS = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}
_SHOWN_CHARS = 64


class Decoder(Protocol):
    """Turns the body's bytes as sent into the body, one chunk of the wire at a time."""

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Yield what ``data`` decodes to, in pieces of at most :data:`PIECE_BYTES`.

        Raises:
            Rejected: 400 when the bytes do not decode.

        """
        ...

    def finish(self) -> None:
        """Check that the body ended where its coding says it ends.

        Raises:
            Rejected: 400 when the encoded stream stops short.

        """
        ...


class Identity:
    """The body as sent."""

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Yield ``data`` itself (sent as it arrived, it is no larger than a read)."""
        if data:
            yield data

    def finish(self) -> None:
        """Nothing to check: any end is the end."""


class Inflate:
    """``gzip`` or ``deflate`` through :mod:`zlib`, never more than a piece ahead."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        # Made on the first byte: raw or zlib-wrapped deflate shows there.
        self._stream: zlib._Decompress | None = None

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Yield what ``data`` inflates to, one piece at a time, each only when asked for."""
        while True:
            if self._stream is None or self._stream.eof:
                if not data:
                    return
                self._stream = self._next_stream(data)
            try:
                piece = self._stream.decompress(data, PIECE_BYTES)
            except zlib.error as exc:
                raise unreadable_body(f"it is not valid {self.coding} ({exc})") from None
            if piece:
                yield piece
            if self._stream.eof:
                data = self._stream.unused_data
                continue
            data = self._stream.unconsumed_tail
            # A full piece may leave output inside zlib even with no input left.
            if not data and len(piece) < PIECE_BYTES:
                return

    def finish(self) -> None:
        """Refuse a stream cut short (a gzip body without its trailer, say)."""
        if self._stream is not None and not self._stream.eof:
            raise unreadable_body(f"the {self.coding} stream ends early")

    def _next_stream(self, data: bytes) -> zlib._Decompress:
        if self.coding == "gzip":  # a new member, when one ended
            return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        if self._stream is not None:
            raise unreadable_body("it is not valid deflate (bytes after the end of its stream)")
        # RFC 1950: the low nibble of a zlib stream's first byte is 8 (deflate).
        raw = data[0] & 0x0F != 8
        return zlib.decompressobj(wbits=-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)


def decoder_for(content_encoding: str | None) -> Decoder:
    """Return the decoder for a request's ``Content-Encoding``.

    Args:
        content_encoding: the header's value(s), comma-separated; ``None`` when absent.

    Raises:
        Rejected: 415 with ``Accept-Encoding`` for a coding that is not decoded here.

    """
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return Identity()
    if len(codings) == 1 and codings[0] in _ZLIB_CODINGS:
        return Inflate(_ZLIB_CODINGS[codings[0]])
    shown = (content_encoding or "").strip()[:_SHOWN_CHARS]
    raise Rejected(
        415,
        "unsupported_content_encoding",
        f"content encoding {shown!r} is not supported; send gzip, deflate or no Content-Encoding",
        headers={"Accept-Encoding": ACCEPTED_CODINGS},
    )


__all__ = ["ACCEPTED_CODINGS", "PIECE_BYTES", "Decoder", "Identity", "Inflate", "decoder_for"]
