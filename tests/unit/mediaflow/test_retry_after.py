"""Retry-After is parsed as RFC 9110 defines it, and whatever a server sends stays bounded."""

from datetime import UTC, datetime, timedelta

import pytest

from mediaflow.retry_after import MAX_RETRY_AFTER_S, retry_after_seconds

NOW = datetime(2026, 11, 29, 8, 49, 37, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("0", 0.0),
        ("7", 7.0),
        ("120", 120.0),
        (" 30 ", 30.0),  # optional whitespace around a field value
        ("3600", 3600.0),
    ],
)
def test_delta_seconds_are_read_as_given(header, seconds):
    assert retry_after_seconds(header, now=NOW) == seconds


@pytest.mark.parametrize(
    "header",
    [
        "1e12",
        "inf",
        "-inf",
        "Infinity",
        "nan",
        "NaN",
        "-5",
        "+5",
        "1.5",
        "",
        "   ",
        "soon",
        "5 s",
        "0x10",
        "\ud800",
        "١٢",
        None,
    ],
)
def test_anything_but_digits_or_an_http_date_is_ignored(header):
    assert retry_after_seconds(header, now=NOW) is None


@pytest.mark.parametrize("header", ["1000000000000", "9" * 5000, "86401"])
def test_a_huge_delay_is_capped(header):
    assert retry_after_seconds(header, now=NOW) == MAX_RETRY_AFTER_S


@pytest.mark.parametrize(
    "header",
    [
        "Sun, 29 Nov 2026 08:59:37 GMT",  # IMF-fixdate
        "Sunday, 29-Nov-26 08:59:37 GMT",  # obsolete RFC 850
        "Sun Nov 29 08:59:37 2026",  # obsolete asctime
    ],
)
def test_an_http_date_is_the_time_left_until_it(header):
    assert retry_after_seconds(header, now=NOW) == 600.0


def test_an_asctime_date_with_a_one_digit_day_is_read():
    now = datetime(2026, 11, 6, 8, 49, 37, tzinfo=UTC)
    assert retry_after_seconds("Fri Nov  6 08:50:37 2026", now=now) == 60.0


def test_an_http_date_in_the_past_means_now():
    assert retry_after_seconds("Sun, 06 Nov 1994 08:49:37 GMT", now=NOW) == 0.0


def test_an_http_date_far_in_the_future_is_capped():
    far = (NOW + timedelta(days=400)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert retry_after_seconds(far, now=NOW) == MAX_RETRY_AFTER_S


@pytest.mark.parametrize(
    "header",
    [
        "Sun, 31 Feb 2026 08:49:37 GMT",  # no such day
        "Sun, 29 Nov 2026 25:00:00 GMT",  # no such hour
        "Sun, 29 Nov 2026 08:49:37 +0200",  # HTTP dates are always GMT
        "29 Nov 2026 08:49:37 GMT",
        "Sun, 29 Foo 2026 08:49:37 GMT",
        "Sun, 29 Nov 99999 08:49:37 GMT",
    ],
)
def test_a_malformed_date_is_ignored(header):
    assert retry_after_seconds(header, now=NOW) is None


def test_without_now_the_current_time_is_used():
    assert retry_after_seconds("Sun, 06 Nov 1994 08:49:37 GMT") == 0.0
