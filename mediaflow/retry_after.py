"""``Retry-After`` (RFC 9110, section 10.2.3), parsed strictly and bounded.

A server may ask for ``delay-seconds`` (digits only) or an ``HTTP-date``
(IMF-fixdate, or the obsolete RFC 850 and asctime forms, always GMT). Any
other value is ignored: ``1e12``, ``inf``, ``nan``, ``-5`` or ``1.5`` are not
what the RFC allows, and a value that is not understood must not decide how
long a media waits. What is understood is capped at
:data:`MAX_RETRY_AFTER_S`; the retry policy caps it again at its longest
tier (:mod:`mediaflow.kafka.retry`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

MAX_RETRY_AFTER_S = 86_400.0
"""The longest wait a server can ask for (one day)."""

_DELTA_SECONDS = re.compile(r"[0-9]+", re.ASCII)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH = "(?P<month>" + "|".join(_MONTHS) + ")"
_TIME = r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
_HTTP_DATES = (
    # IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    re.compile(
        rf"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (?P<day>[0-9]{{2}}) {_MONTH} "
        rf"(?P<year>[0-9]{{4}}) {_TIME} GMT",
        re.ASCII,
    ),
    # RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    re.compile(
        rf"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), "
        rf"(?P<day>[0-9]{{2}})-{_MONTH}-(?P<yy>[0-9]{{2}}) {_TIME} GMT",
        re.ASCII,
    ),
    # asctime: Sun Nov  6 08:49:37 1994
    re.compile(
        rf"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) {_MONTH} (?P<day>[0-9]{{2}}| [0-9]) {_TIME} "
        rf"(?P<year>[0-9]{{4}})",
        re.ASCII,
    ),
)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Return the seconds a ``Retry-After`` value asks to wait, or ``None`` when it is unusable.

    Args:
        value: the header as received (``None`` when absent).
        now: the current time, for an HTTP date; the system clock when omitted.

    Returns:
        Seconds in ``[0, MAX_RETRY_AFTER_S]``: a date in the past is 0, anything
        longer than the cap is the cap. ``None`` for a value RFC 9110 does not allow.

    """
    if value is None:
        return None
    text = value.strip(" \t")
    if _DELTA_SECONDS.fullmatch(text):
        # Compared as text first: int() refuses more than 4300 digits.
        if len(text) > len(str(int(MAX_RETRY_AFTER_S))):
            return MAX_RETRY_AFTER_S
        return min(float(int(text)), MAX_RETRY_AFTER_S)
    now = now or datetime.now(UTC)
    moment = _http_date(text, now)
    if moment is None:
        return None
    wait = (moment - now).total_seconds()
    return min(max(wait, 0.0), MAX_RETRY_AFTER_S)


def _http_date(text: str, now: datetime) -> datetime | None:
    for form in _HTTP_DATES:
        match = form.fullmatch(text)
        if match is None:
            continue
        fields = match.groupdict()
        if fields.get("yy") is not None:
            # RFC 9110 5.6.7: a two-digit year more than 50 years ahead is in the last century.
            year = now.year // 100 * 100 + int(fields["yy"])
            if year > now.year + 50:
                year -= 100
        else:
            year = int(fields["year"])
        try:
            return datetime(
                year,
                _MONTHS.index(fields["month"]) + 1,
                int(fields["day"]),
                int(fields["hour"]),
                int(fields["minute"]),
                int(fields["second"]),
                tzinfo=UTC,
            )
        except ValueError:  # 31 Feb, hour 25...
            return None
    return None


__all__ = ["MAX_RETRY_AFTER_S", "retry_after_seconds"]
