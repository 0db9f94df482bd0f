"""The byte pipe of one download: body chunks -> decrypt -> hash, count, cap -> upload.

Nothing here holds a whole file: each chunk is decrypted, hashed and handed to
the :class:`~mediaflow.storage.objects.Upload` (which buffers at most a few parts and
applies backpressure). Plaintext released by the decryptor is unauthenticated
until :meth:`MediaDecryptor.finalize` succeeds; the caller aborts the upload on
any error raised here, so unverified bytes never become an object.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from mediaflow.errors import ErrorKind, IntegrityError, MediaTooLarge
from mediaflow.whatsapp import MediaDecryptor

ENC_OVERHEAD = 16 + 10
"""Bytes an ``.enc`` file may have beyond its plaintext: one padding block and the MAC."""

_CRYPTO = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="mediaflow-crypto")
"""Where chunks are decrypted and hashed, one CPU-bound call per core at most.

OpenSSL's hashing releases the GIL, so off the event loop it runs on another
core while the loop keeps moving the bytes of the other downloads.
"""


async def _off_loop(work: Callable[[bytes], object], chunk: bytes) -> object:
    return await asyncio.get_running_loop().run_in_executor(_CRYPTO, work, chunk)


class Sink(Protocol):
    """Where plaintext goes (an :class:`~mediaflow.storage.objects.Upload`)."""

    async def write(self, data: bytes) -> None:
        """Take the next bytes."""
        ...


@dataclass(frozen=True, slots=True)
class Transferred:
    """What went through the pipe: plaintext SHA-256 (hex) and length."""

    sha256: str
    size: int


def size_limit(declared_length: int | None, margin: float, absolute_max: int) -> int:
    """The most plaintext bytes a media may have.

    Args:
        declared_length: ``fileLength`` as declared, if any.
        margin: fraction allowed above the declared length.
        absolute_max: the hard cap (``MEDIAFLOW_MAX_MEDIA_BYTES``).
    """
    if declared_length is None or declared_length < 0:
        return absolute_max
    return min(absolute_max, int(declared_length * (1 + margin)) + 1)


def refuse_declared_oversize(declared_length: int | None, absolute_max: int) -> None:
    """Refuse a media whose declared ``fileLength`` is already over the hard cap.

    Checked before any request: downloading up to the cap only to fail would
    waste the bandwidth (and the W-API call) that the cap exists to save.

    Args:
        declared_length: ``fileLength`` as declared, if any.
        absolute_max: the hard cap (``MEDIAFLOW_MAX_MEDIA_BYTES``).

    Raises:
        MediaTooLarge: ``declared_length`` is over ``absolute_max``.
    """
    if declared_length is not None and declared_length > absolute_max:
        raise MediaTooLarge(
            f"declared fileLength {declared_length} exceeds the limit of {absolute_max} bytes; "
            "not downloaded"
        )


async def transfer(
    chunks: AsyncIterator[bytes],
    sink: Sink,
    *,
    limit: int,
    decryptor: MediaDecryptor | None = None,
    expected_sha256: bytes | None = None,
    expected_length: int | None = None,
) -> Transferred:
    """Stream ``chunks`` into ``sink``, decrypting when a decryptor is given.

    For encrypted media the decryptor checks enc hash, MAC, padding, hash and
    length; for plain media the same hash and length checks are made here.

    Args:
        chunks: the response body.
        sink: where the plaintext goes.
        limit: the most plaintext bytes allowed (see :func:`size_limit`).
        decryptor: set for ``.enc`` bodies; built with ``max_plaintext=limit``.
        expected_sha256: declared plaintext SHA-256 (raw), checked for plain bodies.
        expected_length: declared plaintext length, checked for plain bodies.

    Raises:
        MediaTooLarge: more than ``limit`` bytes arrived.
        IntegrityError: a hash, MAC, padding or length check failed.
        ProviderUnavailable: the body stopped arriving (raised by ``chunks``).
        StorageUnavailable: the sink could not write.
    """
    raw_limit = limit + ENC_OVERHEAD if decryptor else limit
    received = 0
    digest = None if decryptor else hashlib.sha256()
    async for chunk in chunks:
        received += len(chunk)
        if received > raw_limit:
            raise MediaTooLarge(f"media exceeds the limit of {limit} bytes; download stopped")
        if decryptor is not None:
            await sink.write(await _off_loop(decryptor.update, chunk))  # type: ignore[arg-type]
        else:
            assert digest is not None
            await _off_loop(digest.update, chunk)
            await sink.write(chunk)
    if decryptor is not None:
        await sink.write(decryptor.finalize())
        return Transferred(decryptor.plaintext_sha256, decryptor.plaintext_length)
    assert digest is not None
    if expected_sha256 is not None and not hmac.compare_digest(digest.digest(), expected_sha256):
        raise IntegrityError(
            f"SHA-256 of the {received}-byte media does not match fileSha256",
            kind=ErrorKind.SHA256_MISMATCH,
        )
    if expected_length is not None and received != expected_length:
        raise IntegrityError(
            f"media is {received} bytes but fileLength declares {expected_length}",
            kind=ErrorKind.LENGTH_MISMATCH,
        )
    return Transferred(digest.hexdigest(), received)


__all__ = [
    "ENC_OVERHEAD",
    "Sink",
    "Transferred",
    "refuse_declared_oversize",
    "size_limit",
    "transfer",
]
