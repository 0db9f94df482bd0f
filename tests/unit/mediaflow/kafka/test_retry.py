import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from mediaflow.errors import (
    ErrorKind,
    MediaExpired,
    MediaflowError,
    ProviderUnavailable,
    StorageUnavailable,
)
from mediaflow.kafka.retry import DeadLetter, RetryLater, RetryPolicy, RetryTier

NOW = datetime(2026, 11, 29, tzinfo=UTC)
TIERS = (RetryTier("retry.10s", 10), RetryTier("retry.1m", 60))


def test_a_transient_failure_goes_to_the_tier_of_its_attempt():
    policy = RetryPolicy(TIERS, jitter=0)
    first = policy.decide(1, ProviderUnavailable("500"), NOW)
    second = policy.decide(2, ProviderUnavailable("500"), NOW)
    assert isinstance(first, RetryLater) and isinstance(second, RetryLater)
    assert (first.tier.topic, first.due_at, first.attempt) == (
        "retry.10s",
        NOW + timedelta(seconds=10),
        2,
    )
    assert (second.tier.topic, second.attempt) == ("retry.1m", 3)


def test_retries_exhausted_dead_letters_with_the_last_error():
    decision = RetryPolicy(TIERS).decide(3, ProviderUnavailable("W-API answered 502"), NOW)
    assert isinstance(decision, DeadLetter)
    assert decision.kind is ErrorKind.RETRIES_EXHAUSTED
    assert "W-API answered 502" in decision.message and "3 attempts" in decision.message


def test_a_permanent_failure_is_dead_lettered_at_once_with_its_kind():
    decision = RetryPolicy(TIERS).decide(1, MediaExpired("CDN answered 410"), NOW)
    assert isinstance(decision, DeadLetter) and decision.kind is ErrorKind.EXPIRED


def test_an_unexpected_error_is_dead_lettered_not_retried_forever():
    decision = RetryPolicy(TIERS).decide(1, MediaflowError("bug"), NOW)
    assert isinstance(decision, DeadLetter) and decision.kind is ErrorKind.UNEXPECTED


def rate_limited(retry_after):
    return ProviderUnavailable("429", kind=ErrorKind.RATE_LIMITED, retry_after=retry_after)


def test_retry_after_longer_than_the_tier_delay_goes_to_the_first_tier_that_long():
    decision = RetryPolicy(TIERS, jitter=0.2).decide(1, rate_limited(45), NOW, random.Random(3))
    assert isinstance(decision, RetryLater) and decision.tier.topic == "retry.1m"
    assert NOW + timedelta(seconds=45) <= decision.due_at <= NOW + timedelta(seconds=60)
    assert decision.attempt == 2


def test_retry_after_shorter_than_the_tier_of_the_attempt_keeps_that_tier():
    decision = RetryPolicy(TIERS, jitter=0).decide(2, rate_limited(5), NOW)
    assert isinstance(decision, RetryLater) and decision.tier.topic == "retry.1m"
    assert decision.due_at == NOW + timedelta(seconds=60)


@pytest.mark.parametrize("retry_after", [3600, 1e12, math.inf, 86_400])
def test_retry_after_beyond_the_longest_tier_is_capped_at_it(retry_after):
    decision = RetryPolicy(TIERS, jitter=0.1).decide(1, rate_limited(retry_after), NOW)
    assert isinstance(decision, RetryLater) and decision.tier.topic == "retry.1m"
    assert decision.due_at <= NOW + timedelta(seconds=60)


@pytest.mark.parametrize("retry_after", [math.nan, -5, -math.inf, 0, None])
def test_an_unusable_retry_after_is_ignored(retry_after):
    decision = RetryPolicy(TIERS, jitter=0).decide(1, rate_limited(retry_after), NOW)
    assert isinstance(decision, RetryLater) and decision.tier.topic == "retry.10s"
    assert decision.due_at == NOW + timedelta(seconds=10)


def test_jitter_only_ever_shortens_the_tier_delay_and_stays_bounded():
    policy = RetryPolicy(TIERS, jitter=0.2)
    rng = random.Random(7)
    dues = [policy.decide(1, ProviderUnavailable("x"), NOW, rng).due_at for _ in range(200)]
    assert min(dues) >= NOW + timedelta(seconds=8)
    assert max(dues) <= NOW + timedelta(seconds=10)
    assert len(set(dues)) > 1


def test_no_record_is_due_later_than_its_tier_delay_after_it_was_routed():
    """The invariant behind head-of-line freedom: records of one tier partition are due
    no later than their tier delay after they were written, whatever the server asked."""
    policy = RetryPolicy(TIERS, jitter=0.5)
    rng = random.Random(11)
    for attempt in (1, 2):
        for retry_after in (None, 0, 1, 9.5, 10, 11, 59, 60, 61, 3600, 1e12, math.inf, math.nan):
            decision = policy.decide(attempt, rate_limited(retry_after), NOW, rng)
            assert isinstance(decision, RetryLater)
            assert decision.due_at <= NOW + timedelta(seconds=decision.tier.delay_s)


def test_never_retry_kinds_are_dead_lettered_even_when_transient():
    policy = RetryPolicy(TIERS, never_retry=frozenset({ErrorKind.STORAGE_UNAVAILABLE}))
    decision = policy.decide(1, StorageUnavailable("down"), NOW)
    assert isinstance(decision, DeadLetter) and decision.kind is ErrorKind.STORAGE_UNAVAILABLE


def test_without_tiers_a_transient_failure_is_exhausted_at_once():
    decision = RetryPolicy().decide(1, ProviderUnavailable("x"), NOW)
    assert isinstance(decision, DeadLetter) and decision.kind is ErrorKind.RETRIES_EXHAUSTED
