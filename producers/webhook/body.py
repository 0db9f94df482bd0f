"""Read a webhook's body: decoded a piece at a time, within a size, a memory and a time limit.

The body is read only once the caller is known (:mod:`mediaflow.producers.webhook.auth`),
and what arrives is decoded here (:mod:`mediaflow.producers.webhook.coding`) rather than
by aiohttp, so that every piece it decodes to is counted against the body's
size limit and the process's in-flight budget (:mod:`mediaflow.producers.webhook.budget`)
before the next one is made.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from mediaflow.producers.webhook.budget import Lease
from mediaflow.producers.webhook.coding import Decoder
from mediaflow.producers.webhook.validation import (
    body_timeout,
    client_gone,
    too_large,
    unreadable_body,
)


class _Pieces:
    """The body decoded so far, refused once either side of the decoder passes the limit."""

    def __init__(self, decoder: Decoder, limit: int, lease: Lease) -> None:
        self._decoder = decoder
        self._limit = limit
        self._lease = lease
        self._received = 0
        self._size = 0
        self._pieces: list[bytes] = []

    def add(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > self._limit:
            raise too_large(self._limit)
        for piece in self._decoder.feed(chunk):
            self._size += len(piece)
            if self._size > self._limit:  # decompressed past the limit
                raise too_large(self._limit)
            self._lease.take(len(piece))
            self._pieces.append(piece)

    def whole(self) -> bytes:
        self._decoder.finish()
        if len(self._pieces) == 1:  # the usual webhook: no copy
            return self._pieces[0]
        return b"".join(self._pieces)


async def read_body(
    request: web.BaseRequest, decoder: Decoder, lease: Lease, *, limit: int, timeout_s: float
) -> bytes:
    """Read and decode the body of ``request``.

    Args:
        request: the request, its caller already known.
        decoder: for the request's ``Content-Encoding``.
        lease: the request's share of the in-flight budget; it holds the body
            as decoded, until the caller gives it back.
        limit: the most bytes the body may have, as sent and once decoded (named
            in the 413).
        timeout_s: how long the rest of the body may take to arrive. Without it a
            client that stops sending mid-body holds its connection, and a place
            among the requests shutdown waits for, forever.

    Raises:
        Rejected: 413 once more than ``limit`` bytes arrived or were decoded;
            503 when the budget cannot hold the next piece; 408 when the body is
            not complete within ``timeout_s``; 400 when its framing or its
            ``Content-Encoding`` does not decode; 499 when the client hung up
            first.

    """
    pieces = _Pieces(decoder, limit, lease)
    content = request.content
    try:
        if content.is_eof():  # it came with the headers, as webhooks do: no timer
            pieces.add(content.read_nowait())
        else:
            async with asyncio.timeout(timeout_s):
                while chunk := await content.readany():
                    pieces.add(chunk)
    except TimeoutError:
        raise body_timeout(timeout_s) from None
    except web.RequestPayloadError as exc:
        # aiohttp wraps the parser's error, whose message says what is broken.
        raise unreadable_body(getattr(exc.__cause__, "message", str(exc))) from None
    except ConnectionResetError:
        raise client_gone() from None
    return pieces.whole()


__all__ = ["read_body"]
