"""Tests for mediaflow.whatsapp (keys, media_crypto): WhatsApp media keys and .enc files.

The .enc files come from the simulator's encryptor (simulator.encrypt), which
is checked here too: the decryptor and it must agree byte for byte.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import random
from itertools import pairwise

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

import mediaflow.whatsapp
from mediaflow.errors import (
    ErrorKind,
    IntegrityError,
    InvalidPayload,
    MediaTooLarge,
    UsageError,
)
from mediaflow.events import MediaType
from mediaflow.whatsapp import (
    MediaDecryptor,
    MediaKeys,
    decode_b64_field,
    derive_media_keys,
    hkdf_info,
)
from simulator.encrypt import EncryptedMedia, MediaEncryptor, encrypt_media

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
ALL_TYPES = list(MediaType)
WHOLE = None  # chunk size meaning "feed everything at once"


# ----------------------------------------------------------------- helpers


def _chunks(data: bytes, size: int | None) -> list[bytes]:
    if size is None:
        return [data]
    return [data[i : i + size] for i in range(0, len(data), size)]


def _decrypt(
    enc: bytes,
    media_key: bytes = KEY,
    media_type: MediaType = MediaType.IMAGE,
    chunk: int | None = WHOLE,
    **expected: object,
) -> tuple[bytes, MediaDecryptor]:
    decryptor = MediaDecryptor(media_key, media_type, **expected)  # type: ignore[arg-type]
    out = b"".join(decryptor.update(part) for part in _chunks(enc, chunk))
    return out + decryptor.finalize(), decryptor


def _key_material(media_key: bytes) -> list[str]:
    """Every printable form of a key and the keys derived from it."""
    secrets = [media_key]
    for media_type in ALL_TYPES:
        keys = derive_media_keys(media_key, hkdf_info(media_type))
        secrets += [keys.iv, keys.cipher_key, keys.mac_key, keys.ref_key]
    forms: list[str] = []
    for secret in secrets:
        forms += [
            secret.hex(),
            repr(secret),
            base64.b64encode(secret).decode(),
            base64.urlsafe_b64encode(secret).decode().rstrip("="),
        ]
    return forms


def _assert_fails(
    enc: bytes, kind: ErrorKind, media_key: bytes = KEY, **kwargs: object
) -> IntegrityError:
    with pytest.raises(IntegrityError) as info:
        _decrypt(enc, media_key, **kwargs)  # type: ignore[arg-type]
    assert info.value.kind is kind
    for form in _key_material(media_key):
        assert form not in info.value.message
    return info.value


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def _reference_hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 written out with hmac, independent of the code under test."""
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    okm, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


@pytest.fixture(scope="module")
def sample() -> EncryptedMedia:
    """Return a 1028-byte image encrypted with KEY."""
    return encrypt_media(bytes(range(256)) * 4 + b"tail", KEY, MediaType.IMAGE)


# --------------------------------------------------------------- hkdf_info


@pytest.mark.parametrize(
    ("media_type", "variant", "info"),
    [
        (MediaType.IMAGE, None, b"WhatsApp Image Keys"),
        (MediaType.STICKER, None, b"WhatsApp Image Keys"),
        (MediaType.STICKER, "animated", b"WhatsApp Image Keys"),
        (MediaType.VIDEO, None, b"WhatsApp Video Keys"),
        (MediaType.VIDEO, "gif", b"WhatsApp Video Keys"),
        (MediaType.VIDEO, "ptv", b"WhatsApp Video Keys"),
        (MediaType.AUDIO, None, b"WhatsApp Audio Keys"),
        (MediaType.AUDIO, "ptt", b"WhatsApp Audio Keys"),
        (MediaType.DOCUMENT, None, b"WhatsApp Document Keys"),
        ("document", None, b"WhatsApp Document Keys"),
    ],
)
def test_hkdf_info_follows_the_whatsapp_table(
    media_type: MediaType, variant: str | None, info: bytes
) -> None:
    """Each media type and variant maps to the info string WhatsApp clients use."""
    assert hkdf_info(media_type, variant) == info


def test_hkdf_info_rejects_a_variant_of_another_type() -> None:
    """A voice-note variant on a video is an inconsistent record, not a video."""
    with pytest.raises(InvalidPayload, match="'ptt' is not valid for media type 'video'"):
        hkdf_info(MediaType.VIDEO, "ptt")


def test_hkdf_info_rejects_an_unknown_media_type() -> None:
    """An unknown media type is an invalid payload naming the known ones."""
    with pytest.raises(InvalidPayload, match="unknown media type 'gif'"):
        hkdf_info("gif")


# ------------------------------------------------------------- derivation


def test_reference_hkdf_matches_rfc5869_test_case_3() -> None:
    """The test's own HKDF reproduces RFC 5869 A.3 (SHA-256, no salt, no info)."""
    okm = _reference_hkdf(b"\x0b" * 22, b"", b"", 42)
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


def test_derived_keys_are_the_16_32_32_32_split_of_hkdf_sha256() -> None:
    """iv, cipher, MAC and ref keys are consecutive slices of 112 HKDF bytes."""
    info = b"WhatsApp Video Keys"
    expanded = HKDF(algorithm=hashes.SHA256(), length=112, salt=None, info=info).derive(KEY)
    assert expanded == _reference_hkdf(KEY, bytes(32), info, 112)
    keys = derive_media_keys(KEY, info)
    assert keys == MediaKeys(
        iv=expanded[:16],
        cipher_key=expanded[16:48],
        mac_key=expanded[48:80],
        ref_key=expanded[80:112],
    )


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_derive_media_keys_rejects_a_key_that_is_not_32_bytes(length: int) -> None:
    """A media key of the wrong size is an invalid payload that states its size."""
    with pytest.raises(InvalidPayload, match=f"media key must be 32 bytes, got {length}"):
        derive_media_keys(b"k" * length, b"WhatsApp Image Keys")


# ------------------------------------------------------------- round trips


@pytest.mark.parametrize("chunk", [1, 7, 4096, WHOLE])
@pytest.mark.parametrize("size", [0, 1, 15, 16, 17])
@pytest.mark.parametrize("media_type", ALL_TYPES)
def test_small_media_round_trips_in_any_chunking(
    media_type: MediaType, size: int, chunk: int | None
) -> None:
    """Encrypt then decrypt gives the plaintext back, whatever the chunk size."""
    plaintext = random.Random(size).randbytes(size)
    media = encrypt_media(plaintext, KEY, media_type)
    assert len(media.enc) == (size // 16 + 1) * 16 + 10
    out, decryptor = _decrypt(
        media.enc,
        media_type=media_type,
        chunk=chunk,
        file_enc_sha256=media.file_enc_sha256,
        file_sha256=media.file_sha256,
        file_length=media.file_length,
    )
    assert out == plaintext
    assert decryptor.plaintext_length == size
    assert decryptor.plaintext_sha256 == hashlib.sha256(plaintext).hexdigest()


@pytest.mark.parametrize("chunk", [4096, 65537, WHOLE])
@pytest.mark.parametrize("media_type", ALL_TYPES)
def test_large_media_round_trips_in_any_chunking(media_type: MediaType, chunk: int | None) -> None:
    """A 1 MiB + 3 media round trips with block-aligned, odd and whole chunks."""
    plaintext = random.Random(7).randbytes(1024 * 1024 + 3)
    media = encrypt_media(plaintext, KEY, media_type)
    out, decryptor = _decrypt(
        media.enc,
        media_type=media_type,
        chunk=chunk,
        file_enc_sha256=media.file_enc_sha256,
        file_sha256=media.file_sha256,
        file_length=len(plaintext),
    )
    assert out == plaintext
    assert decryptor.plaintext_length == len(plaintext)


@settings(max_examples=60, deadline=None)
@given(
    plaintext=st.binary(max_size=300),
    enc_cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    plain_cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=8),
)
def test_streaming_encrypt_and_decrypt_agree_with_any_split(
    plaintext: bytes, enc_cuts: list[int], plain_cuts: list[int]
) -> None:
    """Chunked encryption equals one-shot encryption and decrypts under any split."""
    encryptor = MediaEncryptor(KEY, MediaType.AUDIO, "ptt")
    bounds = [0, *sorted(plain_cuts), len(plaintext)]
    enc = b"".join(encryptor.update(plaintext[a:b]) for a, b in pairwise(bounds))
    enc += encryptor.finalize()
    assert enc == encrypt_media(plaintext, KEY, MediaType.AUDIO).enc

    decryptor = MediaDecryptor(
        KEY,
        MediaType.AUDIO,
        file_enc_sha256=encryptor.file_enc_sha256,
        file_sha256=encryptor.file_sha256,
        file_length=encryptor.file_length,
    )
    bounds = [0, *sorted(enc_cuts), len(enc)]
    out = b"".join(decryptor.update(enc[a:b]) for a, b in pairwise(bounds))
    assert out + decryptor.finalize() == plaintext


def test_update_holds_back_the_last_block_and_the_mac() -> None:
    """Before finalize, the padding block and the 10 MAC bytes are never released."""
    media = encrypt_media(b"x" * 40, KEY, MediaType.DOCUMENT)
    decryptor = MediaDecryptor(KEY, MediaType.DOCUMENT)
    assert decryptor.update(media.enc) == b"x" * 32
    assert decryptor.finalize() == b"x" * 8


def test_encryptor_reports_the_waproto_fields() -> None:
    """file_sha256, file_enc_sha256 and file_length describe plaintext and .enc."""
    encryptor = MediaEncryptor(KEY, MediaType.VIDEO, "gif")
    enc = encryptor.update(b"abc") + encryptor.update(b"defgh") + encryptor.finalize()
    assert encryptor.file_sha256 == hashlib.sha256(b"abcdefgh").digest()
    assert encryptor.file_enc_sha256 == hashlib.sha256(enc).digest()
    assert encryptor.file_length == 8


def test_b64_gives_the_fields_a_webhook_would_carry() -> None:
    """b64() yields WAProto base64 strings that decode back to the raw values."""
    media = encrypt_media(b"hello", KEY, MediaType.IMAGE)
    fields = media.b64()
    assert set(fields) == {"mediaKey", "fileSha256", "fileEncSha256", "fileLength"}
    assert fields["fileLength"] == "5"
    assert decode_b64_field(fields["mediaKey"], "mediaKey", 32) == KEY
    out, _ = _decrypt(
        media.enc,
        decode_b64_field(fields["mediaKey"], "mediaKey", 32),
        file_sha256=decode_b64_field(fields["fileSha256"], "fileSha256", 32),
        file_enc_sha256=decode_b64_field(fields["fileEncSha256"], "fileEncSha256", 32),
        file_length=int(fields["fileLength"]),
    )
    assert out == b"hello"


# ----------------------------------------------------------------- tampering


def test_wrong_media_type_fails_the_mac(sample: EncryptedMedia) -> None:
    """Another type's info derives another MAC key, so the MAC does not match."""
    _assert_fails(sample.enc, ErrorKind.MAC_MISMATCH, media_type=MediaType.VIDEO)


def test_wrong_media_key_fails_the_mac(sample: EncryptedMedia) -> None:
    """A media key that is not the file's gives a MAC mismatch."""
    _assert_fails(sample.enc, ErrorKind.MAC_MISMATCH, media_key=OTHER_KEY)


@pytest.mark.parametrize("index", [0, 17, -11])
def test_flipped_ciphertext_byte_fails_the_mac(sample: EncryptedMedia, index: int) -> None:
    """Changing any ciphertext byte (first, middle, last) is a MAC mismatch."""
    _assert_fails(_flip(sample.enc, index), ErrorKind.MAC_MISMATCH)


@pytest.mark.parametrize("index", [-10, -1])
def test_flipped_mac_byte_fails_the_mac(sample: EncryptedMedia, index: int) -> None:
    """Changing a byte of the trailing MAC is a MAC mismatch."""
    _assert_fails(_flip(sample.enc, index), ErrorKind.MAC_MISMATCH)


def test_wrong_declared_enc_sha256_is_its_own_kind(sample: EncryptedMedia) -> None:
    """An intact file whose fileEncSha256 differs is an enc_sha256 mismatch."""
    wrong = hashlib.sha256(b"another file").digest()
    _assert_fails(sample.enc, ErrorKind.ENC_SHA256_MISMATCH, file_enc_sha256=wrong)


def test_enc_sha256_is_checked_before_the_mac(sample: EncryptedMedia) -> None:
    """A tampered file with a declared fileEncSha256 fails on the hash first."""
    _assert_fails(
        _flip(sample.enc, 3),
        ErrorKind.ENC_SHA256_MISMATCH,
        file_enc_sha256=sample.file_enc_sha256,
    )


def test_wrong_declared_sha256_is_its_own_kind(sample: EncryptedMedia) -> None:
    """A valid file whose plaintext hash is not fileSha256 is a sha256 mismatch."""
    wrong = hashlib.sha256(b"another plaintext").digest()
    _assert_fails(sample.enc, ErrorKind.SHA256_MISMATCH, file_sha256=wrong)


def test_wrong_declared_length_is_its_own_kind(sample: EncryptedMedia) -> None:
    """A valid file whose plaintext size is not fileLength is a length mismatch."""
    error = _assert_fails(
        sample.enc,
        ErrorKind.LENGTH_MISMATCH,
        file_sha256=sample.file_sha256,
        file_length=sample.file_length + 1,
    )
    assert f"{sample.file_length} bytes" in error.message


@pytest.mark.parametrize("bad_tail", [b"\x00", b"\x11", b"\x01\x02"])
def test_valid_mac_over_bad_padding_is_bad_padding(bad_tail: bytes) -> None:
    """Ciphertext with a correct MAC but broken PKCS#7 padding is bad padding."""
    keys = derive_media_keys(KEY, hkdf_info(MediaType.IMAGE))
    padded = b"p" * (32 - len(bad_tail)) + bad_tail  # block-aligned, not PKCS#7
    encryptor = Cipher(algorithms.AES(keys.cipher_key), modes.CBC(keys.iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    mac = hmac.new(keys.mac_key, keys.iv + ciphertext, hashlib.sha256).digest()[:10]
    _assert_fails(ciphertext + mac, ErrorKind.BAD_PADDING)


@pytest.mark.parametrize("cut", [1, 5, 16, 26])
def test_truncated_file_fails_the_mac(sample: EncryptedMedia, cut: int) -> None:
    """A file cut short (mid-block or by whole blocks) is a MAC mismatch."""
    _assert_fails(sample.enc[:-cut], ErrorKind.MAC_MISMATCH)


@pytest.mark.parametrize("length", [0, 9, 10, 25])
def test_file_shorter_than_a_block_and_mac_says_truncated(
    sample: EncryptedMedia, length: int
) -> None:
    """Fewer than 26 bytes is a MAC mismatch whose message says truncated."""
    error = _assert_fails(sample.enc[:length], ErrorKind.MAC_MISMATCH)
    assert "truncated" in error.message


def test_truncated_file_with_declared_enc_sha256_fails_the_hash(
    sample: EncryptedMedia,
) -> None:
    """With fileEncSha256 declared, truncation is caught by the first check."""
    _assert_fails(
        sample.enc[:-5],
        ErrorKind.ENC_SHA256_MISMATCH,
        file_enc_sha256=sample.file_enc_sha256,
    )


# ------------------------------------------------------------------- limits


def test_plaintext_over_the_limit_stops_the_stream_early() -> None:
    """MediaTooLarge is raised as soon as released plaintext passes max_plaintext."""
    media = encrypt_media(bytes(100_000), KEY, MediaType.VIDEO)
    decryptor = MediaDecryptor(KEY, MediaType.VIDEO, max_plaintext=10_000)
    fed = 0
    with pytest.raises(MediaTooLarge, match="10000 bytes"):
        for part in _chunks(media.enc, 4096):
            fed += len(part)
            decryptor.update(part)
    assert fed < 20_000 < len(media.enc)


def test_plaintext_exactly_at_the_limit_is_accepted() -> None:
    """max_plaintext equal to the media length lets it through."""
    media = encrypt_media(bytes(1000), KEY, MediaType.VIDEO)
    out, _ = _decrypt(media.enc, media_type=MediaType.VIDEO, chunk=7, max_plaintext=1000)
    assert out == bytes(1000)


def test_last_block_over_the_limit_fails_at_finalize() -> None:
    """Passing the limit with the held-back last block raises from finalize()."""
    media = encrypt_media(bytes(1001), KEY, MediaType.VIDEO)
    with pytest.raises(MediaTooLarge):
        _decrypt(media.enc, media_type=MediaType.VIDEO, max_plaintext=1000)


# ----------------------------------------------------------------- misuse


def test_decryptor_is_spent_after_a_failure(sample: EncryptedMedia) -> None:
    """After an error, update() and finalize() refuse to continue."""
    decryptor = MediaDecryptor(KEY, MediaType.IMAGE, max_plaintext=10)
    with pytest.raises(MediaTooLarge):
        decryptor.update(sample.enc)
    with pytest.raises(UsageError):
        decryptor.update(b"more")
    with pytest.raises(UsageError):
        decryptor.finalize()


def test_results_are_unknown_until_finalize_succeeds(
    sample: EncryptedMedia,
) -> None:
    """plaintext_sha256 and plaintext_length raise UsageError before verification."""
    decryptor = MediaDecryptor(KEY, MediaType.IMAGE)
    decryptor.update(sample.enc)
    with pytest.raises(UsageError):
        _ = decryptor.plaintext_sha256
    with pytest.raises(UsageError):
        _ = decryptor.plaintext_length
    encryptor = MediaEncryptor(KEY, MediaType.IMAGE)
    with pytest.raises(UsageError):
        _ = encryptor.file_sha256


def test_declared_digest_of_wrong_size_is_an_invalid_payload() -> None:
    """A fileSha256 that is not 32 bytes is rejected when the decryptor is built."""
    with pytest.raises(InvalidPayload, match="file_sha256 must be 32 bytes, got 31"):
        MediaDecryptor(KEY, MediaType.IMAGE, file_sha256=bytes(31))


# ---------------------------------------------------------------- property


@settings(max_examples=300, deadline=None)
@given(
    enc=st.binary(max_size=200),
    chunk=st.integers(min_value=1, max_value=64),
    media_type=st.sampled_from(ALL_TYPES),
    max_plaintext=st.none() | st.integers(min_value=0, max_value=100),
    declare=st.booleans(),
)
def test_random_bytes_only_ever_raise_integrity_or_size_errors(
    enc: bytes,
    chunk: int,
    media_type: MediaType,
    max_plaintext: int | None,
    declare: bool,
) -> None:
    """Arbitrary .enc bytes fail with IntegrityError or MediaTooLarge, nothing else."""
    declared: dict[str, object] = {}
    if declare:
        digest = hashlib.sha256(enc).digest()
        declared = {"file_enc_sha256": digest, "file_sha256": digest, "file_length": 1}
    with contextlib.suppress(IntegrityError, MediaTooLarge):
        _decrypt(enc, media_type=media_type, chunk=chunk, max_plaintext=max_plaintext, **declared)


# -------------------------------------------------------------------- secrets


def test_key_material_never_appears_in_reprs(sample: EncryptedMedia) -> None:
    """MediaKeys, decryptor, encryptor and EncryptedMedia reprs show no key bytes."""
    decryptor = MediaDecryptor(KEY, MediaType.IMAGE)
    decryptor.update(sample.enc[:50])
    encryptor = MediaEncryptor(KEY, MediaType.IMAGE)
    encryptor.update(b"abc")
    objects = [
        derive_media_keys(KEY, hkdf_info(MediaType.IMAGE)),
        decryptor,
        encryptor,
        sample,
    ]
    for obj in objects:
        text = repr(obj) + str(obj)
        for form in _key_material(KEY):
            assert form not in text, type(obj).__name__


# ---------------------------------------------------------------- base64


def test_decode_b64_field_accepts_standard_and_urlsafe_with_or_without_padding() -> None:
    """All four base64 spellings of a key decode to the same 32 bytes."""
    raw = bytes([0xFB, 0xFF, 0xBF]) * 10 + b"\xfe\xff"  # uses '+' and '/' (or '-', '_')
    standard = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    assert "+" in standard and "/" in standard and standard.endswith("=")
    for spelling in (standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("=")):
        assert decode_b64_field(spelling, "mediaKey", 32) == raw


@pytest.mark.parametrize("value", ["not base64!", "QUJD*", "QUJDR", "QU=J", "ÿÿÿÿ", "QUJD\x00"])
def test_decode_b64_field_rejects_garbage_without_echoing_it(value: str) -> None:
    """Invalid base64 names the field and never repeats the (maybe secret) value."""
    with pytest.raises(InvalidPayload, match="mediaKey") as info:
        decode_b64_field(value, "mediaKey", None)
    assert value not in info.value.message


def test_decode_b64_field_checks_the_decoded_length() -> None:
    """A decoded value of the wrong size names the field and both sizes."""
    with pytest.raises(InvalidPayload, match="fileSha256 must decode to 32 bytes, got 3"):
        decode_b64_field("QUJD", "fileSha256", 32)


def test_decode_b64_field_rejects_non_strings() -> None:
    """A number or null where base64 text belongs is an invalid payload."""
    with pytest.raises(InvalidPayload, match="mediaKey must be a base64 string, got int"):
        decode_b64_field(12, "mediaKey", 32)  # type: ignore[arg-type]


def test_package_exports_exactly_the_public_api() -> None:
    """mediaflow.whatsapp re-exports the decrypting side in a sorted __all__.

    Encrypting is what a WhatsApp client does: the simulator's business
    (simulator.encrypt), not the product's.
    """
    assert mediaflow.whatsapp.__all__ == sorted(mediaflow.whatsapp.__all__)
    assert set(mediaflow.whatsapp.__all__) == {
        "BLOCK_SIZE",
        "MAC_LENGTH",
        "MEDIA_KEY_LENGTH",
        "MIN_ENC_LENGTH",
        "MediaDecryptor",
        "MediaKeys",
        "decode_b64_field",
        "derive_media_keys",
        "hkdf_info",
    }
