import hashlib
from collections.abc import AsyncIterator

import pytest

from mediaflow.errors import ErrorKind, IntegrityError, MediaTooLarge
from mediaflow.events import MediaType
from mediaflow.processors.downloader.streaming import refuse_declared_oversize, size_limit, transfer
from mediaflow.whatsapp import MediaDecryptor
from simulator.encrypt import MediaEncryptor

KEY = bytes(range(32))


class Sink:
    def __init__(self) -> None:
        self.data = bytearray()
        self.largest_write = 0

    async def write(self, data: bytes) -> None:
        self.data += data
        self.largest_write = max(self.largest_write, len(data))


async def chunked(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def encrypt(plain: bytes) -> tuple[bytes, MediaEncryptor]:
    enc = MediaEncryptor(KEY, MediaType.VIDEO)
    return enc.update(plain) + enc.finalize(), enc


def decryptor(enc: MediaEncryptor, limit: int) -> MediaDecryptor:
    return MediaDecryptor(
        KEY,
        MediaType.VIDEO,
        file_enc_sha256=enc.file_enc_sha256,
        file_sha256=enc.file_sha256,
        file_length=enc.file_length,
        max_plaintext=limit,
    )


async def test_encrypted_body_is_decrypted_into_the_sink_chunk_by_chunk() -> None:
    plain = bytes(range(256)) * 200
    body, enc = encrypt(plain)
    sink = Sink()
    result = await transfer(
        chunked(body), sink, limit=len(plain), decryptor=decryptor(enc, len(plain))
    )
    assert bytes(sink.data) == plain
    assert result.sha256 == hashlib.sha256(plain).hexdigest() and result.size == len(plain)
    assert sink.largest_write <= 1000 + 16  # at most one held-back block more


async def test_tampered_encrypted_body_fails_with_mac_mismatch() -> None:
    body, _enc = encrypt(b"x" * 5000)
    tampered = body[:100] + bytes([body[100] ^ 1]) + body[101:]
    dec = MediaDecryptor(KEY, MediaType.VIDEO, max_plaintext=10_000)
    with pytest.raises(IntegrityError) as info:
        await transfer(chunked(tampered), Sink(), limit=10_000, decryptor=dec)
    assert info.value.kind is ErrorKind.MAC_MISMATCH


async def test_plain_body_with_the_wrong_hash_fails_with_sha256_mismatch() -> None:
    with pytest.raises(IntegrityError) as info:
        await transfer(
            chunked(b"abc"), Sink(), limit=10, expected_sha256=hashlib.sha256(b"abd").digest()
        )
    assert info.value.kind is ErrorKind.SHA256_MISMATCH


async def test_plain_body_shorter_than_declared_fails_with_length_mismatch() -> None:
    with pytest.raises(IntegrityError) as info:
        await transfer(chunked(b"abc"), Sink(), limit=10, expected_length=4)
    assert info.value.kind is ErrorKind.LENGTH_MISMATCH


async def test_body_over_the_limit_stops_early() -> None:
    sink = Sink()
    with pytest.raises(MediaTooLarge):
        await transfer(chunked(b"x" * 10_000), sink, limit=2500)
    assert len(sink.data) <= 3000


def test_limit_is_the_declared_length_plus_margin_capped_by_the_absolute_max() -> None:
    assert size_limit(1000, 0.05, 10**9) == 1051
    assert size_limit(None, 0.05, 777) == 777
    assert size_limit(10**12, 0.05, 777) == 777


def test_a_declared_length_over_the_hard_cap_is_refused_before_downloading() -> None:
    refuse_declared_oversize(None, 777)
    refuse_declared_oversize(777, 777)
    with pytest.raises(MediaTooLarge, match="declared fileLength 778"):
        refuse_declared_oversize(778, 777)
