from datetime import UTC, datetime

from mediaflow.ops._output import table


def test_a_table_aligns_columns_under_upper_case_headers():
    text = table([{"a": 1, "bb": "x"}, {"a": 22, "bb": None}], ["a", "bb"])
    assert text.splitlines() == ["A   BB", "1   x", "22  -"]


def test_long_cells_are_cut_and_times_shown_to_the_second():
    moment = datetime(2026, 5, 4, 12, 0, 0, 123456, tzinfo=UTC)
    text = table([{"t": moment, "m": "x" * 80}], ["t", "m"], max_width=30)
    assert "2026-05-04T12:00:00+00:00" in text and "x" * 29 + "…" in text
