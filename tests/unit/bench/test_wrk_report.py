"""The webhook bench reads wrk's report into numbers (a wrong parse would be a wrong ratio)."""

from __future__ import annotations

import os
import time

import pytest

from bench.bench_webhook import _cpu_seconds, _parse_wrk, _wrk_summary

REPORT = """\
Running 3s test @ http://127.0.0.1:8080/webhooks/wapi?token=x
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.09ms    1.94ms    1.20s    73.64%
    Req/Sec     4.70k   112.74     5.10k    70.00%
  Latency Distribution
     50%  850.00us
     75%    5.98ms
     90%    7.52ms
     99%    1.20s
  14112 requests in 3.00s, 2.89MB read
  Non-2xx or 3xx responses: 12
Requests/sec:   4702.91
Transfer/sec:      0.96MB
"""


def test_rate_of_2xx_percentiles_in_milliseconds_and_errors_are_read() -> None:
    result = _parse_wrk(REPORT, 3)

    assert result == {
        "per_s": pytest.approx(4702.91 * (14112 - 12) / 14112),  # a 503 is no webhook taken
        "p50_ms": pytest.approx(0.85),
        "p99_ms": pytest.approx(1200.0),
        "errors": 12,
        "seconds": 3,
    }


def test_a_report_without_non_2xx_line_has_no_errors() -> None:
    report = REPORT.replace("  Non-2xx or 3xx responses: 12\n", "")

    assert _parse_wrk(report, 3)["errors"] == 0
    assert _parse_wrk(report, 3)["per_s"] == 4702.91


def test_a_report_that_is_not_wrks_fails_loudly_rather_than_reading_zero() -> None:
    with pytest.raises(ValueError, match="Requests/sec"):
        _parse_wrk(REPORT.replace("Requests/sec", "Reqs"), 3)
    with pytest.raises(ValueError, match="99th percentile"):
        _parse_wrk(REPORT.replace("     99%    1.20s\n", ""), 3)


def test_rounds_are_weighted_by_their_length_and_keep_the_worst_p99() -> None:
    rounds = [
        {"per_s": 1000.0, "p50_ms": 2.0, "p99_ms": 9.0, "errors": 0, "seconds": 1},
        {"per_s": 4000.0, "p50_ms": 3.0, "p99_ms": 5.0, "errors": 2, "seconds": 3},
    ]

    summary = _wrk_summary(rounds)

    assert summary["per_s"] == 3250.0
    assert summary["p99_ms"] == 9.0
    assert summary["errors"] == 2


def test_rounds_with_the_servers_cpu_time_give_cpu_per_webhook() -> None:
    rounds = [
        {"per_s": 1000.0, "p50_ms": 2.0, "p99_ms": 9.0, "errors": 0, "seconds": 2},
        {"per_s": 3000.0, "p50_ms": 3.0, "p99_ms": 5.0, "errors": 0, "seconds": 1},
    ]
    rounds[0] |= {"cpu_s": 0.3, "main_cpu_s": 0.2}
    rounds[1] |= {"cpu_s": 0.2, "main_cpu_s": 0.1}

    summary = _wrk_summary(rounds)

    assert summary["cpu_us_per_webhook"] == 100.0  # 0.5 s over 5,000 webhooks
    assert summary["main_us_per_webhook"] == 60.0


def test_cpu_time_is_read_for_the_whole_process_and_its_main_thread() -> None:
    before = _cpu_seconds(os.getpid())
    if before is None:
        pytest.skip("no /proc here")
    started = time.thread_time()
    while time.thread_time() - started < 0.2:  # CPU, not wall time: a slow machine only waits
        pass
    after = _cpu_seconds(os.getpid())

    assert after is not None
    assert after[1] - before[1] >= 0.15  # clock ticks are 10 ms
    assert after[0] >= after[1]
