"""Header values from outside always encode; what cannot be UTF-8 becomes U+FFFD."""

import pytest

from mediaflow.kafka import headers as h


@pytest.mark.parametrize(
    ("value", "decoded"),
    [
        ("quota \ud800 exceeded", "quota \ufffd exceeded"),
        ("\udcff\udcfe", "\ufffd\ufffd"),
        ("nul \x00 bell \x07 esc \x1b[2J", "nul \x00 bell \x07 esc \x1b[2J"),
        ("Relatório", "Relatório"),
        (12, "12"),
    ],
)
def test_any_text_encodes_and_reads_back(value, decoded):
    [(name, raw)] = h.encode({h.LAST_ERROR: value})
    assert name == h.LAST_ERROR and isinstance(raw, bytes)
    assert h.to_dict([(name, raw)]) == {h.LAST_ERROR: decoded}


def test_none_values_are_left_out():
    assert h.encode({h.LAST_ERROR: None, h.ATTEMPT: 2}) == [(h.ATTEMPT, b"2")]
