"""Reproducible sample media, encrypted exactly as a WhatsApp client would.

A :class:`MediaLibrary` built from a seed hands out :class:`SampleMedia` items:
their plaintext is a real file header (JPEG, MP4, Ogg, PDF, ZIP, WebP) followed
by bytes from an AES-CTR keystream keyed by the item's own seed, so any item
can be regenerated, chunk by chunk, at any time, without ever holding the whole
file in memory. That is what lets the fake CDN serve a 1 GiB video.

The ``.enc`` bytes come from :class:`simulator.encrypt.MediaEncryptor`
(whatsapp-media.md section 3). The declared hashes are computed by streaming
the item once, on first use, and cached.

Same seed and same sequence of calls give byte-identical media, keys and paths.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import random
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mediaflow.errors import UsageError
from mediaflow.events import MediaType
from mediaflow.whatsapp import BLOCK_SIZE, MAC_LENGTH
from simulator.encrypt import MediaEncryptor, generate_media_key
from simulator.profiles import (
    DOCX,
    HOSTILE_FILE_NAMES,
    HOSTILE_SHARE,
    MIX,
    PLAIN_NAMES,
    PROFILES,
    WEBP,
    Format,
    minimum_size,
)

DEFAULT_CHUNK = 64 * 1024
"""Bytes per chunk when streaming plaintext or ``.enc`` bytes."""

MEDIA_KEY_TIMESTAMP = 1732799990
"""The ``mediaKeyTimestamp`` every sample declares (a fixed value keeps runs reproducible)."""


@dataclasses.dataclass(frozen=True, slots=True)
class SampleMedia:
    """One media file as a WhatsApp message describes it, able to stream itself.

    ``media_key`` is a secret in real life; here it is a test fixture, but the
    repr still hides it. Hash fields are base64 strings, as WAProto JSON sends them.
    """

    cdn_id: str
    media_type: MediaType
    variant: str | None
    mimetype: str
    size: int
    media_key: bytes = dataclasses.field(repr=False)
    direct_path: str
    content_seed: bytes = dataclasses.field(repr=False)
    header: bytes = dataclasses.field(repr=False)
    trailer: bytes = dataclasses.field(repr=False)
    file_name: str | None = None
    caption: str | None = None
    seconds: int | None = None
    width: int | None = None
    height: int | None = None
    _digests: dict[str, bytes] = dataclasses.field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = dataclasses.field(
        default_factory=threading.Lock, repr=False, compare=False
    )

    @property
    def path(self) -> str:
        """The direct path without its query string: the CDN's lookup key."""
        return self.direct_path.split("?", 1)[0]

    @property
    def enc_length(self) -> int:
        """Size of the ``.enc`` file: PKCS#7-padded ciphertext plus the 10-byte MAC."""
        return (self.size // BLOCK_SIZE + 1) * BLOCK_SIZE + MAC_LENGTH

    @property
    def media_key_b64(self) -> str:
        """``mediaKey`` as WAProto JSON sends it (standard padded base64)."""
        return base64.b64encode(self.media_key).decode("ascii")

    @property
    def file_sha256(self) -> str:
        """Base64 SHA-256 of the plaintext (streams the file once, then cached)."""
        return base64.b64encode(self._digest("plain")).decode("ascii")

    @property
    def file_enc_sha256(self) -> str:
        """Base64 SHA-256 of the ``.enc`` file (streams the file once, then cached)."""
        return base64.b64encode(self._digest("enc")).decode("ascii")

    @property
    def file_length(self) -> str:
        """Plaintext length as a decimal string, as W-API sends it."""
        return str(self.size)

    @property
    def sha256_hex(self) -> str:
        """Hex SHA-256 of the plaintext, the form the pipeline records after storing."""
        return self._digest("plain").hex()

    def iter_plaintext(self, chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
        """Yield the plaintext in chunks of at most ``chunk_size`` bytes.

        Raises:
            UsageError: ``chunk_size`` is not positive.

        """
        if chunk_size <= 0:
            raise UsageError(f"chunk_size must be positive, got {chunk_size}")
        yield from _chunks(self.header, chunk_size)
        body = self.size - len(self.header) - len(self.trailer)
        keystream = Cipher(
            algorithms.AES(hashlib.sha256(b"mediaflow-sim|" + self.content_seed).digest()),
            modes.CTR(b"\x00" * 16),
        ).encryptor()
        while body > 0:
            n = min(chunk_size, body)
            yield keystream.update(b"\x00" * n)
            body -= n
        yield from _chunks(self.trailer, chunk_size)

    def plaintext(self) -> bytes:
        """Return the whole plaintext (small items and tests only)."""
        return b"".join(self.iter_plaintext())

    def iter_enc(self, chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
        """Yield the ``.enc`` file (ciphertext then MAC) in chunks.

        Raises:
            UsageError: ``chunk_size`` is not positive.

        """
        encryptor = MediaEncryptor(self.media_key, self.media_type, self.variant)
        for chunk in self.iter_plaintext(chunk_size):
            out = encryptor.update(chunk)
            if out:
                yield out
        yield encryptor.finalize()

    def enc(self) -> bytes:
        """Return the whole ``.enc`` file (small items and tests only)."""
        return b"".join(self.iter_enc())

    def waproto_fields(self, cdn_base_url: str) -> dict[str, Any]:
        """Return the WAProto JSON fields of this media, ``url`` on ``cdn_base_url``.

        Args:
            cdn_base_url: scheme and host of the CDN, e.g. ``http://127.0.0.1:8091``.

        """
        fields: dict[str, Any] = {
            "url": f"{cdn_base_url.rstrip('/')}{self.direct_path}&_nc_sid=5e03e0&mms3=true",
            "mimetype": self.mimetype,
            "fileSha256": self.file_sha256,
            "fileLength": self.file_length,
            "mediaKey": self.media_key_b64,
            "fileEncSha256": self.file_enc_sha256,
            "directPath": self.direct_path,
            "mediaKeyTimestamp": str(MEDIA_KEY_TIMESTAMP),
        }
        return fields

    def _digest(self, which: str) -> bytes:
        with self._lock:
            if not self._digests:
                encryptor = MediaEncryptor(self.media_key, self.media_type, self.variant)
                enc_sha = hashlib.sha256()
                for chunk in self.iter_plaintext(1024 * 1024):
                    enc_sha.update(encryptor.update(chunk))
                enc_sha.update(encryptor.finalize())
                self._digests["plain"] = encryptor.file_sha256
                self._digests["enc"] = enc_sha.digest()
            return self._digests[which]


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


class MediaLibrary:
    """Every sample media of one simulator run, by CDN id and by direct path.

    Each call draws from one seeded generator, so the same seed and the same
    sequence of calls give the same media. Lookups are safe from other threads
    (the simulator's servers may run in one while a test adds media in another).
    """

    def __init__(self, seed: int = 0, *, max_size: int | None = None) -> None:
        """Create an empty library.

        Args:
            seed: seeds every choice: sizes, keys, names, content.
            max_size: cap on generated sizes (tests use a few KB to stay fast);
                explicit ``size=`` arguments and :meth:`large` ignore it.

        """
        self.seed = seed
        self._rng = random.Random(seed)
        self._max_size = max_size
        self._by_id: dict[str, SampleMedia] = {}
        self._by_path: dict[str, SampleMedia] = {}
        self._files: dict[str, Path] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[SampleMedia]:
        return iter(list(self._by_id.values()))

    def get(self, cdn_id: str) -> SampleMedia | None:
        """Return the media with this CDN id, or ``None``."""
        return self._by_id.get(cdn_id)

    def by_path(self, direct_path: str) -> SampleMedia | None:
        """Return the media at this direct path (its query string is ignored), or ``None``."""
        return self._by_path.get(direct_path.split("?", 1)[0])

    def materialize(self, media: SampleMedia, directory: Path) -> Path:
        """Write the ``.enc`` file of ``media`` into ``directory``; the CDN then serves that file.

        The CDN normally encrypts while it serves (nothing to store, any size).
        That costs the serving process as much CPU as the client's decryption,
        too much for a benchmark source, which should cost next to nothing: a
        written file goes out with ``sendfile``. Faults still apply.
        """
        path = directory / f"{media.cdn_id}.enc"
        with path.open("wb") as out:
            for chunk in media.iter_enc(1024 * 1024):
                out.write(chunk)
        with self._lock:
            self._files[media.cdn_id] = path
        return path

    def enc_file(self, media: SampleMedia) -> Path | None:
        """The file written by :meth:`materialize` for ``media``, if any."""
        return self._files.get(media.cdn_id)

    def make(
        self,
        media_type: MediaType | str,
        variant: str | None = None,
        *,
        size: int | None = None,
        file_name: str | None = None,
        caption: str | None = None,
    ) -> SampleMedia:
        """Create and register one media.

        Args:
            media_type: image, video, audio, document or sticker.
            variant: ``gif``/``ptv`` (video), ``ptt`` (audio), ``animated`` (sticker).
            size: plaintext bytes; drawn from the type's realistic range when omitted.
            file_name: documents only; drawn (a small share hostile) when omitted.
            caption: optional caption.

        Raises:
            UsageError: unknown type/variant combination, or a size too small
                for the file's header.

        """
        kind = MediaType(media_type)
        try:
            fmt, low, high = PROFILES[(kind, variant)]
        except KeyError:
            raise UsageError(f"no sample profile for {kind.value} variant {variant!r}") from None
        with self._lock:
            rng = self._rng
            if kind is MediaType.DOCUMENT:
                if file_name is None:
                    file_name = self._document_name(rng)
                if file_name.lower().endswith(".docx"):
                    fmt = DOCX
            if size is None:
                size = rng.randint(low, high)
                if self._max_size is not None:
                    size = min(size, max(self._max_size, minimum_size(fmt)))
            return self._register(kind, variant, fmt, size, file_name, caption, rng)

    def large(
        self,
        size_bytes: int,
        media_type: MediaType | str = MediaType.VIDEO,
        variant: str | None = None,
    ) -> SampleMedia:
        """Create a media of exactly ``size_bytes`` (100 MB to 1 GiB is fine).

        Nothing is generated until it is streamed; the hashes take one pass over
        the content the first time they are read.

        Raises:
            UsageError: as :meth:`make`.

        """
        return self.make(media_type, variant, size=size_bytes)

    def mixed(self, count: int) -> list[SampleMedia]:
        """Create ``count`` media in the proportions of real WhatsApp traffic."""
        kinds = [k for k, _ in MIX]
        weights = [w for _, w in MIX]
        with self._lock:
            picks = self._rng.choices(kinds, weights=weights, k=count)
        return [self.make(kind, variant) for kind, variant in picks]

    def _document_name(self, rng: random.Random) -> str:
        if rng.random() < HOSTILE_SHARE:
            return rng.choice(HOSTILE_FILE_NAMES)
        return rng.choice(PLAIN_NAMES)

    def _register(
        self,
        kind: MediaType,
        variant: str | None,
        fmt: Format,
        size: int,
        file_name: str | None,
        caption: str | None,
        rng: random.Random,
    ) -> SampleMedia:
        if size < minimum_size(fmt):
            raise UsageError(f"a {fmt.mimetype} sample needs at least {minimum_size(fmt)} bytes")
        while True:
            cdn_id = f"{rng.randrange(10**9, 10**10)}_{rng.randrange(10**4, 10**6)}"
            if cdn_id not in self._by_id:
                break
        oh = base64.urlsafe_b64encode(rng.randbytes(12)).decode("ascii").rstrip("=")
        oe = f"{rng.randrange(0x67000000, 0x68000000):X}"
        header = fmt.header
        if fmt is WEBP:
            header = b"RIFF" + struct.pack("<I", size - 8) + fmt.header[8:]
        media = SampleMedia(
            cdn_id=cdn_id,
            media_type=kind,
            variant=variant,
            mimetype=fmt.mimetype,
            size=size,
            media_key=generate_media_key(rng),
            direct_path=f"{fmt.path_prefix}/{cdn_id}_n.enc?ccb=11-4&oh=01_{oh}&oe={oe}",
            content_seed=rng.randbytes(16),
            header=header,
            trailer=fmt.trailer,
            file_name=file_name,
            caption=caption,
            seconds=rng.randint(1, 180) if kind in (MediaType.AUDIO, MediaType.VIDEO) else None,
            width=rng.choice((720, 960, 1280)) if kind is MediaType.IMAGE else None,
            height=rng.choice((960, 1280, 1600)) if kind is MediaType.IMAGE else None,
        )
        self._by_id[cdn_id] = media
        self._by_path[media.path] = media
        return media


__all__ = [
    "DEFAULT_CHUNK",
    "MEDIA_KEY_TIMESTAMP",
    "MediaLibrary",
    "SampleMedia",
]
