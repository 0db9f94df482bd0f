"""Sample media: real WhatsApp encryption, declared hashes, reproducible from a seed."""

from __future__ import annotations

import base64
import hashlib

import pytest

from mediaflow.events import MediaType
from mediaflow.whatsapp import MediaDecryptor, decode_b64_field
from simulator.media import MediaLibrary, SampleMedia
from simulator.profiles import HOSTILE_FILE_NAMES

KINDS = [
    (MediaType.IMAGE, None),
    (MediaType.VIDEO, None),
    (MediaType.VIDEO, "gif"),
    (MediaType.VIDEO, "ptv"),
    (MediaType.AUDIO, "ptt"),
    (MediaType.AUDIO, None),
    (MediaType.DOCUMENT, None),
    (MediaType.STICKER, None),
    (MediaType.STICKER, "animated"),
]


def _decrypt(media: SampleMedia, chunk: int = 7_001) -> bytes:
    decryptor = MediaDecryptor(
        decode_b64_field(media.media_key_b64, "mediaKey", 32),
        media.media_type,
        media.variant,
        file_enc_sha256=decode_b64_field(media.file_enc_sha256, "fileEncSha256", 32),
        file_sha256=decode_b64_field(media.file_sha256, "fileSha256", 32),
        file_length=int(media.file_length),
    )
    out = bytearray()
    enc = media.enc()
    for start in range(0, len(enc), chunk):
        out += decryptor.update(enc[start : start + chunk])
    out += decryptor.finalize()
    return bytes(out)


@pytest.mark.parametrize(("media_type", "variant"), KINDS)
def test_enc_file_decrypts_and_matches_its_declared_hashes(media_type, variant):
    media = MediaLibrary(seed=3, max_size=20_000).make(media_type, variant)

    assert _decrypt(media) == media.plaintext()


def test_enc_length_is_known_without_encrypting():
    media = MediaLibrary(seed=3).make(MediaType.IMAGE, size=4_321)

    assert len(media.enc()) == media.enc_length


def test_plaintext_has_the_size_and_file_signature_its_type_declares():
    library = MediaLibrary(seed=5)
    image = library.make(MediaType.IMAGE, size=1_000)
    pdf = library.make(MediaType.DOCUMENT, size=1_000, file_name="a.pdf")

    assert len(image.plaintext()) == 1_000
    assert image.plaintext().startswith(b"\xff\xd8\xff")
    assert pdf.plaintext().startswith(b"%PDF-")
    assert pdf.mimetype == "application/pdf"


def test_same_seed_gives_the_same_media_bytes_keys_and_paths():
    first = MediaLibrary(seed=42).mixed(12)
    second = MediaLibrary(seed=42).mixed(12)

    assert [m.direct_path for m in first] == [m.direct_path for m in second]
    assert [m.media_key for m in first] == [m.media_key for m in second]
    assert [m.file_enc_sha256 for m in first] == [m.file_enc_sha256 for m in second]


def test_different_seeds_give_different_media():
    first = MediaLibrary(seed=1).make(MediaType.IMAGE, size=2_000)
    second = MediaLibrary(seed=2).make(MediaType.IMAGE, size=2_000)

    assert first.plaintext() != second.plaintext()
    assert first.media_key != second.media_key


def test_large_media_streams_in_bounded_chunks_and_hashes_to_its_declared_sha256():
    media = MediaLibrary(seed=9).large(3 * 1024 * 1024 + 5)
    digest = hashlib.sha256()
    biggest = 0
    for chunk in media.iter_plaintext(256 * 1024):
        digest.update(chunk)
        biggest = max(biggest, len(chunk))

    assert biggest <= 256 * 1024
    assert base64.b64encode(digest.digest()).decode() == media.file_sha256
    assert int(media.file_length) == 3 * 1024 * 1024 + 5


def test_library_finds_media_by_direct_path_ignoring_the_query_string():
    library = MediaLibrary(seed=4)
    media = library.make(MediaType.AUDIO, "ptt", size=900)

    assert library.by_path(media.path + "?oh=other&oe=1") is media
    assert library.get(media.cdn_id) is media


def test_waproto_fields_point_url_at_the_given_cdn():
    media = MediaLibrary(seed=4).make(MediaType.IMAGE, size=900)
    fields = media.waproto_fields("http://127.0.0.1:9999")

    assert fields["url"].startswith("http://127.0.0.1:9999" + media.direct_path)
    assert fields["directPath"] == media.direct_path
    assert fields["fileLength"] == "900"


def test_a_small_share_of_documents_have_hostile_file_names():
    library = MediaLibrary(seed=8)
    documents = [library.make(MediaType.DOCUMENT, size=500) for _ in range(200)]
    hostile = [d for d in documents if d.file_name in HOSTILE_FILE_NAMES]

    assert 0 < len(hostile) < len(documents) / 3


def test_repr_never_shows_the_media_key():
    media = MediaLibrary(seed=4).make(MediaType.IMAGE, size=900)

    assert media.media_key_b64 not in repr(media)
