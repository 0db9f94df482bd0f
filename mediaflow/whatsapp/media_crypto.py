"""WhatsApp media encryption: streaming decrypt and verify of an ``.enc`` file.

An ``.enc`` file on the WhatsApp CDN is::

    ciphertext = AES-256-CBC(cipher_key, iv, PKCS#7(plaintext))
    .enc       = ciphertext || HMAC-SHA256(mac_key, iv || ciphertext)[:10]

with ``iv``, ``cipher_key`` and ``mac_key`` expanded from the message's 32-byte
``mediaKey`` (:mod:`mediaflow.whatsapp.keys`). The shared spec,
whatsapp-media.md section 3, is the reference.

Everything here is pure and streaming: no I/O, and memory bounded by the chunk
size, so a 1 GiB video never sits in memory. :class:`MediaDecryptor` releases
plaintext *before* the MAC is checked (the downloader streams it into an S3
multipart upload and aborts the upload when :meth:`MediaDecryptor.finalize`
raises); nothing it released may be trusted until ``finalize()`` returns.

Failures are :class:`~mediaflow.errors.IntegrityError` with one ``kind`` per
check, :class:`~mediaflow.errors.MediaTooLarge`, or
:class:`~mediaflow.errors.InvalidPayload` for malformed inputs. No message
ever contains key material.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mediaflow.errors import (
    ErrorKind,
    IntegrityError,
    InvalidPayload,
    MediaTooLarge,
    UsageError,
)
from mediaflow.events import MediaType
from mediaflow.whatsapp.keys import derive_media_keys, hkdf_info

MAC_LENGTH = 10
"""Bytes of truncated HMAC-SHA256 at the end of every ``.enc`` file."""

BLOCK_SIZE = 16
"""AES block size in bytes."""

MIN_ENC_LENGTH = BLOCK_SIZE + MAC_LENGTH
"""The smallest valid ``.enc`` file: one (all-padding) block and the MAC."""

_SHA256_LENGTH = 32


def _check_digest(value: bytes | None, name: str) -> bytes | None:
    if value is None:
        return None
    if len(value) != _SHA256_LENGTH:
        raise InvalidPayload(f"{name} must be {_SHA256_LENGTH} bytes, got {len(value)}")
    return bytes(value)


class MediaDecryptor:
    """Decrypt and verify one ``.enc`` stream fed in chunks of any size.

    ``update()`` returns the plaintext that can be released so far: it always
    holds back the last 10 bytes (maybe the MAC) and the last cipher block
    (maybe the padding). ``finalize()`` runs the checks in whatsmeow's order
    and returns the remaining plaintext only if all of them pass:

    1. SHA-256 of the whole ``.enc`` == ``file_enc_sha256`` (``enc_sha256_mismatch``);
    2. length sane and HMAC == trailing 10 bytes (``mac_mismatch``);
    3. PKCS#7 padding valid (``bad_padding``);
    4. SHA-256 of the plaintext == ``file_sha256`` (``sha256_mismatch``);
    5. plaintext length == ``file_length`` (``length_mismatch``).

    Plaintext released by ``update()`` is unauthenticated until then. Once
    ``finalize()`` was called, or any error was raised, the object is spent.
    """

    def __init__(
        self,
        media_key: bytes,
        media_type: MediaType | str,
        variant: str | None = None,
        *,
        file_enc_sha256: bytes | None = None,
        file_sha256: bytes | None = None,
        file_length: int | None = None,
        max_plaintext: int | None = None,
    ) -> None:
        """Prepare a decryptor.

        Args:
            media_key: the raw 32-byte ``mediaKey``.
            media_type: the media type, which selects the HKDF info.
            variant: the finer kind, see :func:`hkdf_info`.
            file_enc_sha256: expected SHA-256 of the ``.enc`` file, if declared.
            file_sha256: expected SHA-256 of the plaintext, if declared.
            file_length: expected plaintext length, if declared.
            max_plaintext: raise :class:`MediaTooLarge` as soon as more
                plaintext than this would be released; ``None`` for no limit.

        Raises:
            InvalidPayload: a key, digest or length argument is malformed.
            UsageError: ``max_plaintext`` is negative.

        """
        keys = derive_media_keys(media_key, hkdf_info(media_type, variant))
        self._expected_enc_sha256 = _check_digest(file_enc_sha256, "file_enc_sha256")
        self._expected_sha256 = _check_digest(file_sha256, "file_sha256")
        if file_length is not None and file_length < 0:
            raise InvalidPayload(f"file_length must not be negative, got {file_length}")
        if max_plaintext is not None and max_plaintext < 0:
            raise UsageError(f"max_plaintext must not be negative, got {max_plaintext}")
        self._expected_length = file_length
        self._max_plaintext = max_plaintext

        self._decryptor = Cipher(algorithms.AES(keys.cipher_key), modes.CBC(keys.iv)).decryptor()
        # The unpadder keeps the last full block back until finalize(), which is
        # exactly the "hold back the padding block" rule.
        self._unpadder = padding.PKCS7(BLOCK_SIZE * 8).unpadder()
        self._mac = hmac.new(keys.mac_key, keys.iv, hashlib.sha256)
        self._enc_sha256 = hashlib.sha256()
        self._plain_sha256 = hashlib.sha256()
        self._enc_length = 0
        self._released = 0
        self._tail = b""  # last <= MAC_LENGTH input bytes, not yet known to be ciphertext
        self._spent = False
        self._verified_sha256: str | None = None

    def __repr__(self) -> str:
        """Show progress, never keys."""
        state = "verified" if self._verified_sha256 else "spent" if self._spent else "open"
        return (
            f"<MediaDecryptor {state} enc_bytes={self._enc_length} "
            f"plaintext_bytes={self._released}>"
        )

    def update(self, chunk: bytes) -> bytes:
        """Feed the next encrypted bytes; return the plaintext releasable so far.

        Raises:
            MediaTooLarge: the plaintext grew past ``max_plaintext``.
            UsageError: the decryptor is already finalized or failed.

        """
        self._check_open("update")
        if not chunk:
            return b""
        self._enc_sha256.update(chunk)
        self._enc_length += len(chunk)
        data = self._tail + chunk
        if len(data) <= MAC_LENGTH:
            self._tail = data
            return b""
        # A view, not a slice: chunks are ~1 MiB and each copy costs the event loop.
        ciphertext, self._tail = memoryview(data)[:-MAC_LENGTH], data[-MAC_LENGTH:]
        self._mac.update(ciphertext)
        return self._release(self._unpadder.update(self._decryptor.update(ciphertext)))

    def finalize(self) -> bytes:
        """Verify the whole stream and return the last plaintext bytes.

        Raises:
            IntegrityError: a check failed; ``kind`` says which.
            MediaTooLarge: the last block pushed the plaintext past ``max_plaintext``.
            UsageError: called twice, or after an error.

        """
        self._check_open("finalize")
        self._spent = True

        if self._expected_enc_sha256 is not None and not hmac.compare_digest(
            self._enc_sha256.digest(), self._expected_enc_sha256
        ):
            raise IntegrityError(
                f"SHA-256 of the {self._enc_length}-byte encrypted file does not match "
                "fileEncSha256: the download is corrupt, truncated, or another file",
                kind=ErrorKind.ENC_SHA256_MISMATCH,
            )

        if self._enc_length < MIN_ENC_LENGTH:
            raise IntegrityError(
                f"encrypted file is truncated: {self._enc_length} bytes, the minimum "
                f"is {MIN_ENC_LENGTH} (one {BLOCK_SIZE}-byte block and the "
                f"{MAC_LENGTH}-byte MAC)",
                kind=ErrorKind.MAC_MISMATCH,
            )
        ciphertext_length = self._enc_length - MAC_LENGTH
        if ciphertext_length % BLOCK_SIZE:
            raise IntegrityError(
                f"encrypted file is truncated or corrupt: its ciphertext is "
                f"{ciphertext_length} bytes, not a multiple of the "
                f"{BLOCK_SIZE}-byte AES block",
                kind=ErrorKind.MAC_MISMATCH,
            )
        if not hmac.compare_digest(self._mac.digest()[:MAC_LENGTH], self._tail):
            raise IntegrityError(
                "MAC of the encrypted file does not match: the file is corrupt, or the "
                "mediaKey or media type does not belong to it",
                kind=ErrorKind.MAC_MISMATCH,
            )

        try:
            rest = self._unpadder.update(self._decryptor.finalize()) + self._unpadder.finalize()
        except ValueError as exc:
            raise IntegrityError(
                "decrypted media has invalid PKCS#7 padding although its MAC is valid",
                kind=ErrorKind.BAD_PADDING,
            ) from exc
        rest = self._release(rest)

        digest = self._plain_sha256.digest()
        if self._expected_sha256 is not None and not hmac.compare_digest(
            digest, self._expected_sha256
        ):
            raise IntegrityError(
                f"SHA-256 of the {self._released}-byte decrypted media does not match fileSha256",
                kind=ErrorKind.SHA256_MISMATCH,
            )
        if self._expected_length is not None and self._released != self._expected_length:
            raise IntegrityError(
                f"decrypted media is {self._released} bytes but fileLength declares "
                f"{self._expected_length}",
                kind=ErrorKind.LENGTH_MISMATCH,
            )
        self._verified_sha256 = digest.hex()
        return rest

    @property
    def plaintext_sha256(self) -> str:
        """Hex SHA-256 of the verified plaintext (after :meth:`finalize` succeeds)."""
        if self._verified_sha256 is None:
            raise UsageError("plaintext_sha256 is only known after finalize() succeeds")
        return self._verified_sha256

    @property
    def plaintext_length(self) -> int:
        """Bytes of verified plaintext (after a successful :meth:`finalize`)."""
        if self._verified_sha256 is None:
            raise UsageError("plaintext_length is only known after finalize() succeeds")
        return self._released

    def _release(self, plaintext: bytes) -> bytes:
        if not plaintext:
            return b""
        released = self._released + len(plaintext)
        if self._max_plaintext is not None and released > self._max_plaintext:
            self._spent = True
            raise MediaTooLarge(
                f"decrypted media exceeds the limit of {self._max_plaintext} bytes "
                f"(reached {released}); download stopped"
            )
        self._released = released
        self._plain_sha256.update(plaintext)
        return plaintext

    def _check_open(self, method: str) -> None:
        if self._spent:
            raise UsageError(
                f"MediaDecryptor.{method}() called after finalize() or a failure; "
                "use a new decryptor"
            )


__all__ = ["BLOCK_SIZE", "MAC_LENGTH", "MIN_ENC_LENGTH", "MediaDecryptor"]
