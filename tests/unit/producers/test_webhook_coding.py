import gzip
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediaflow.producers.webhook.coding import PIECE_BYTES, decoder_for
from mediaflow.producers.webhook.validation import Rejected

BODY = b'{"instanceId": "I1", "event": "webhookReceived", "pad": "' + b"x" * 300_000 + b'"}'


def decode(coding: str | None, data: bytes, split: int = 1000) -> list[bytes]:
    """Feed ``data`` in ``split``-byte chunks; return the pieces the decoder gave."""
    decoder = decoder_for(coding)
    pieces = [p for at in range(0, len(data), split) for p in decoder.feed(data[at : at + split])]
    decoder.finish()
    return pieces


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        (None, lambda b: b),
        ("", lambda b: b),
        ("identity", lambda b: b),
        ("gzip", gzip.compress),
        ("GZip ", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", raw_deflate),  # what some senders mean by "deflate"
        ("gzip, identity", gzip.compress),
    ],
)
def test_every_supported_coding_gives_the_body_back(coding: str | None, encode) -> None:
    assert b"".join(decode(coding, encode(BODY))) == BODY


def test_inflating_gives_pieces_no_larger_than_the_piece_size_whatever_the_ratio() -> None:
    # 1 KB in one chunk that inflates to 1 MB: never more than a piece at a time.
    bomb = gzip.compress(b" " * 1024 * 1024)
    decoder = decoder_for("gzip")
    sizes = [len(piece) for piece in decoder.feed(bomb)]
    assert max(sizes) <= PIECE_BYTES
    assert sum(sizes) == 1024 * 1024


def test_the_pieces_come_one_by_one_as_the_caller_takes_them() -> None:
    decoder = decoder_for("gzip")
    pieces = decoder.feed(gzip.compress(b" " * 1024 * 1024))
    assert len(next(pieces)) == PIECE_BYTES  # the rest is not inflated until asked for


def test_gzip_of_several_members_is_their_concatenation() -> None:
    assert b"".join(decode("gzip", gzip.compress(b"[1,") + gzip.compress(b"2]"))) == b"[1,2]"


@pytest.mark.parametrize(
    ("coding", "data"),
    [
        ("gzip", gzip.compress(BODY)[:-8]),  # no trailer
        ("gzip", gzip.compress(BODY)[:100]),
        ("deflate", zlib.compress(BODY)[:-4]),
    ],
)
def test_a_truncated_stream_is_400(coding: str, data: bytes) -> None:
    with pytest.raises(Rejected) as caught:
        decode(coding, data)
    assert (caught.value.status, caught.value.error) == (400, "unreadable_body")
    assert f"{coding} stream ends early" in caught.value.message


@pytest.mark.parametrize(
    ("coding", "data"),
    [
        ("gzip", BODY),
        ("gzip", b"\x1f\x8c not gzip at all"),
        ("deflate", b"\x78\x9c garbage"),
        ("gzip", gzip.compress(b"{}") + b"trailing"),
        ("deflate", zlib.compress(b"{}") + b"trailing"),
    ],
)
def test_bytes_that_do_not_decode_are_400_naming_the_coding(coding: str, data: bytes) -> None:
    with pytest.raises(Rejected) as caught:
        decode(coding, data)
    assert (caught.value.status, caught.value.error) == (400, "unreadable_body")
    assert f"not valid {coding}" in caught.value.message


@pytest.mark.parametrize(
    "coding", ["br", "zstd", "compress", "gzip, gzip", "deflate, gzip", "chunked", "*", "gzip;q=1"]
)
def test_a_coding_the_receiver_does_not_decode_is_415_saying_what_it_does(coding: str) -> None:
    with pytest.raises(Rejected) as caught:
        decoder_for(coding)
    assert caught.value.status == 415
    assert caught.value.error == "unsupported_content_encoding"
    assert caught.value.headers == {"Accept-Encoding": "gzip, deflate"}
    assert "send gzip, deflate or no Content-Encoding" in caught.value.message


def test_a_long_coding_is_named_only_in_part() -> None:
    with pytest.raises(Rejected) as caught:
        decoder_for("x" * 10_000)
    assert len(caught.value.message) < 200


@given(st.binary(max_size=2000), st.sampled_from(["gzip", "deflate", "x-gzip"]))
def test_any_bytes_decode_or_are_a_400(data: bytes, coding: str) -> None:
    try:
        decode(coding, data, split=7)
    except Rejected as exc:
        assert exc.status == 400
