"""Encrypting media as a WhatsApp client does, to serve from the fake CDN.

The product only ever decrypts (:class:`mediaflow.whatsapp.MediaDecryptor`);
the simulator and the tests need the other side: ``.enc`` files, their
``mediaKey`` and the WAProto fields describing them. The scheme and the keys
are the product's (:func:`~mediaflow.whatsapp.derive_media_keys`), so what is
encrypted here is exactly what the downloader must accept.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import os
import random

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mediaflow.errors import UsageError
from mediaflow.events import MediaType
from mediaflow.whatsapp import (
    BLOCK_SIZE,
    MAC_LENGTH,
    MEDIA_KEY_LENGTH,
    derive_media_keys,
    hkdf_info,
)


def generate_media_key(rng: random.Random | None = None) -> bytes:
    """Return a new 32-byte ``mediaKey``.

    Args:
        rng: a seeded generator for reproducible simulator runs; ``None`` uses
            ``os.urandom`` (use that for anything that is not a test fixture).

    """
    if rng is None:
        return os.urandom(MEDIA_KEY_LENGTH)
    return rng.randbytes(MEDIA_KEY_LENGTH)


class MediaEncryptor:
    """Build an ``.enc`` stream from plaintext chunks, as a WhatsApp client would.

    Concatenating every ``update()`` output and the ``finalize()`` output gives
    the ``.enc`` file. After ``finalize()``, ``file_sha256``,
    ``file_enc_sha256`` (raw digests) and ``file_length`` describe it as a
    WAProto message would.
    """

    def __init__(
        self, media_key: bytes, media_type: MediaType | str, variant: str | None = None
    ) -> None:
        """Prepare an encryptor.

        Args:
            media_key: the raw 32-byte ``mediaKey``.
            media_type: the media type, which selects the HKDF info.
            variant: the finer kind, see :func:`~mediaflow.whatsapp.hkdf_info`.

        Raises:
            InvalidPayload: the key, type or variant is malformed.

        """
        keys = derive_media_keys(media_key, hkdf_info(media_type, variant))
        self._encryptor = Cipher(algorithms.AES(keys.cipher_key), modes.CBC(keys.iv)).encryptor()
        self._padder = padding.PKCS7(BLOCK_SIZE * 8).padder()
        self._mac = hmac.new(keys.mac_key, keys.iv, hashlib.sha256)
        self._enc_sha256 = hashlib.sha256()
        self._plain_sha256 = hashlib.sha256()
        self._length = 0
        self._result: tuple[bytes, bytes] | None = None
        self._spent = False

    def __repr__(self) -> str:
        """Show progress, never keys."""
        state = "spent" if self._spent else "open"
        return f"<MediaEncryptor {state} plaintext_bytes={self._length}>"

    def update(self, plaintext: bytes) -> bytes:
        """Feed plaintext; return the ``.enc`` bytes produced so far.

        Raises:
            UsageError: called after :meth:`finalize`.

        """
        self._check_open("update")
        self._plain_sha256.update(plaintext)
        self._length += len(plaintext)
        return self._emit(self._encryptor.update(self._padder.update(plaintext)))

    def finalize(self) -> bytes:
        """Return the last cipher block(s) followed by the 10-byte MAC.

        Raises:
            UsageError: called twice.

        """
        self._check_open("finalize")
        self._spent = True
        last = self._encryptor.update(self._padder.finalize()) + self._encryptor.finalize()
        self._mac.update(last)
        out = last + self._mac.digest()[:MAC_LENGTH]
        self._enc_sha256.update(out)
        self._result = (self._plain_sha256.digest(), self._enc_sha256.digest())
        return out

    @property
    def file_sha256(self) -> bytes:
        """Raw SHA-256 of the plaintext (after :meth:`finalize`)."""
        return self._finished("file_sha256")[0]

    @property
    def file_enc_sha256(self) -> bytes:
        """Raw SHA-256 of the whole ``.enc`` output (after :meth:`finalize`)."""
        return self._finished("file_enc_sha256")[1]

    @property
    def file_length(self) -> int:
        """Plaintext length in bytes (after :meth:`finalize`)."""
        self._finished("file_length")
        return self._length

    def _emit(self, ciphertext: bytes) -> bytes:
        self._mac.update(ciphertext)
        self._enc_sha256.update(ciphertext)
        return ciphertext

    def _finished(self, name: str) -> tuple[bytes, bytes]:
        if self._result is None:
            raise UsageError(f"{name} is only known after finalize()")
        return self._result

    def _check_open(self, method: str) -> None:
        if self._spent:
            raise UsageError(f"MediaEncryptor.{method}() called after finalize()")


@dataclasses.dataclass(frozen=True, slots=True)
class EncryptedMedia:
    """A whole ``.enc`` file and the WAProto fields that describe it."""

    enc: bytes = dataclasses.field(repr=False)
    media_key: bytes = dataclasses.field(repr=False)
    file_sha256: bytes
    file_enc_sha256: bytes
    file_length: int

    def b64(self) -> dict[str, str]:
        """Return the WAProto JSON strings describing this media.

        Keys: ``mediaKey``, ``fileSha256``, ``fileEncSha256``, ``fileLength``.
        Hashes and key are standard padded base64; ``fileLength`` is a decimal
        string, as W-API sends it. ``mediaKey`` is a secret: do not log the dict.
        """
        return {
            "mediaKey": base64.b64encode(self.media_key).decode("ascii"),
            "fileSha256": base64.b64encode(self.file_sha256).decode("ascii"),
            "fileEncSha256": base64.b64encode(self.file_enc_sha256).decode("ascii"),
            "fileLength": str(self.file_length),
        }


def encrypt_media(
    plaintext: bytes,
    media_key: bytes,
    media_type: MediaType | str,
    variant: str | None = None,
) -> EncryptedMedia:
    """Encrypt a whole media in memory (for tests and small fixtures).

    Args:
        plaintext: the media bytes.
        media_key: the raw 32-byte ``mediaKey``.
        media_type: the media type, which selects the HKDF info.
        variant: the finer kind, see :func:`~mediaflow.whatsapp.hkdf_info`.

    Raises:
        InvalidPayload: the key, type or variant is malformed.

    """
    encryptor = MediaEncryptor(media_key, media_type, variant)
    enc = encryptor.update(plaintext) + encryptor.finalize()
    return EncryptedMedia(
        enc=enc,
        media_key=bytes(media_key),
        file_sha256=encryptor.file_sha256,
        file_enc_sha256=encryptor.file_enc_sha256,
        file_length=encryptor.file_length,
    )


__all__ = ["EncryptedMedia", "MediaEncryptor", "encrypt_media", "generate_media_key"]
