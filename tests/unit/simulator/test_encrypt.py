"""simulator.encrypt: keys for the fake CDN's media."""

from __future__ import annotations

import random

from simulator.encrypt import generate_media_key


def test_generate_media_key_is_reproducible_with_a_seeded_rng() -> None:
    """The same seed gives the same 32-byte key; no rng gives fresh random keys."""
    assert generate_media_key(random.Random(42)) == generate_media_key(random.Random(42))
    assert len(generate_media_key(random.Random(42))) == 32
    assert len(generate_media_key()) == 32
    assert generate_media_key() != generate_media_key()
