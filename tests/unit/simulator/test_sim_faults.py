"""Fault decisions: scripts first, then expiry, then seeded random faults."""

from __future__ import annotations

import pytest

from simulator.faults import Decision, Faults, Outcome


def test_script_answers_in_order_then_falls_back_to_normal_behaviour():
    faults = Faults()
    faults.script("wapi", "m1", [500, 200])

    assert [faults.decide("wapi", "m1").status for _ in range(3)] == [500, 200, 200]


def test_script_applies_only_to_its_target_and_media():
    faults = Faults()
    faults.script("wapi", "m1", [503])

    assert faults.decide("cdn", "m1").outcome is Outcome.OK
    assert faults.decide("wapi", "m2").outcome is Outcome.OK


def test_scripted_429_carries_retry_after():
    faults = Faults(retry_after_s=7)
    faults.script("cdn", "m1", [429])

    decision = faults.decide("cdn", "m1")
    assert (decision.status, decision.retry_after) == (429, "7")


def test_hostile_retry_after_values_go_with_every_429_and_503_and_nothing_else():
    hostile = ("1e12", "inf", "Fri, 31 Dec 9999 23:59:59 GMT")
    faults = Faults(
        error_rate=1.0, status_mix={429: 1, 503: 1, 500: 1}, retry_after_values=hostile, seed=3
    )

    decisions = [faults.decide("cdn", "m") for _ in range(90)]
    by_status = {s: {d.retry_after for d in decisions if d.status == s} for s in (429, 503, 500)}
    assert by_status == {429: set(hostile), 503: set(hostile), 500: {None}}


def test_expired_media_is_gone_on_the_cdn_and_a_provider_error_on_wapi():
    faults = Faults(expired={"m1"}, expired_status=403)

    assert (faults.decide("cdn", "m1").outcome, faults.decide("cdn", "m1").status) == (
        Outcome.EXPIRED,
        403,
    )
    assert faults.decide("wapi", "m1").outcome is Outcome.PROVIDER_ERROR


def test_error_rate_uses_only_statuses_of_the_mix():
    faults = Faults(error_rate=1.0, status_mix={502: 1.0, 429: 1.0}, seed=1)

    statuses = {faults.decide("wapi", "m").status for _ in range(50)}
    assert statuses == {502, 429}


def test_same_seed_makes_the_same_choices():
    def run() -> list[int]:
        faults = Faults(error_rate=0.5, seed=11)
        return [faults.decide("cdn", "m").status for _ in range(40)]

    assert run() == run()


def test_changing_faults_mid_run_affects_the_next_request():
    faults = Faults()
    assert faults.decide("cdn", "m").outcome is Outcome.OK

    faults.error_rate = 1.0
    assert faults.decide("cdn", "m").outcome is Outcome.ERROR


def test_random_faults_skip_targets_not_listed():
    faults = Faults(error_rate=1.0, targets=frozenset({"cdn"}))

    assert faults.decide("wapi", "m").outcome is Outcome.OK


def test_latency_is_fixed_plus_bounded_jitter():
    faults = Faults(latency_s=0.2, jitter_s=0.1)

    delays = [faults.decide("cdn", "m").delay_s for _ in range(20)]
    assert all(0.2 <= d <= 0.3 for d in delays)


def test_a_scripted_redirect_points_at_redirect_to():
    faults = Faults(redirect_to="http://127.0.0.1:9")
    faults.script("wapi", "m1", [307])

    decision = faults.decide("wapi", "m1")
    assert (decision.outcome, decision.status, decision.location) == (
        Outcome.REDIRECT,
        307,
        "http://127.0.0.1:9",
    )


def test_a_redirect_cannot_be_scripted_without_a_target():
    with pytest.raises(ValueError, match="redirect_to"):
        Faults().script("wapi", "m1", [302])


def test_wapi_refusals_are_answered_as_scripted_while_file_hosts_say_gone():
    faults = Faults()
    faults.script("wapi", "m1", [403])
    faults.script("files", "m1", [403])

    assert faults.decide("wapi", "m1") == Decision(Outcome.ERROR, 403)
    assert faults.decide("files", "m1") == Decision(Outcome.EXPIRED, 403)


def test_words_script_a_link_less_answer_and_a_corrupt_body():
    faults = Faults()
    faults.script("wapi", "m1", ["no_link"])
    faults.script("files", "m1", ["corrupt"])

    assert faults.decide("wapi", "m1").outcome is Outcome.NO_LINK
    assert faults.decide("files", "m1").outcome is Outcome.CORRUPT


def test_an_unknown_word_is_refused():
    with pytest.raises(ValueError, match="unknown step"):
        Faults().script("cdn", "m1", ["explode"])


def test_a_provider_error_rate_answers_wapi_calls_with_its_message_and_spares_the_cdn():
    faults = Faults(
        provider_error_rate=1.0,
        provider_error_message="quota \ud800 exceeded",
        wapi_error_status=200,
        targets=frozenset({"wapi", "cdn"}),
    )

    assert faults.decide("wapi", "m") == Decision(
        Outcome.PROVIDER_ERROR, 200, message="quota \ud800 exceeded"
    )
    assert faults.decide("cdn", "m").outcome is Outcome.OK


def test_a_redirect_rate_sends_wapi_calls_to_redirect_to_with_302_or_307():
    faults = Faults(redirect_rate=1.0, redirect_to="http://127.0.0.1:9", seed=2)

    decisions = [faults.decide("wapi", "m") for _ in range(30)]
    assert {(d.outcome, d.location) for d in decisions} == {
        (Outcome.REDIRECT, "http://127.0.0.1:9")
    }
    assert {d.status for d in decisions} == {302, 307}
    assert faults.decide("cdn", "m").outcome is Outcome.OK


def test_a_redirect_rate_needs_a_target():
    with pytest.raises(ValueError, match="redirect_to"):
        Faults(redirect_rate=0.1)
