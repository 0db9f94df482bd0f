import random
from datetime import UTC, datetime, timedelta

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


def test_retry_after_longer_than_the_tier_delay_is_honoured():
    decision = RetryPolicy(TIERS, jitter=0).decide(
        1, ProviderUnavailable("429", kind=ErrorKind.RATE_LIMITED, retry_after=45), NOW
    )
    assert isinstance(decision, RetryLater) and decision.due_at == NOW + timedelta(seconds=45)


def test_jitter_only_ever_delays_and_stays_bounded():
    policy = RetryPolicy(TIERS, jitter=0.2)
    rng = random.Random(7)
    dues = [policy.decide(1, ProviderUnavailable("x"), NOW, rng).due_at for _ in range(200)]
    assert min(dues) >= NOW + timedelta(seconds=10)
    assert max(dues) <= NOW + timedelta(seconds=12)
    assert len(set(dues)) > 1


def test_never_retry_kinds_are_dead_lettered_even_when_transient():
    policy = RetryPolicy(TIERS, never_retry=frozenset({ErrorKind.STORAGE_UNAVAILABLE}))
    decision = policy.decide(1, StorageUnavailable("down"), NOW)
    assert isinstance(decision, DeadLetter) and decision.kind is ErrorKind.STORAGE_UNAVAILABLE


def test_without_tiers_a_transient_failure_is_exhausted_at_once():
    decision = RetryPolicy().decide(1, ProviderUnavailable("x"), NOW)
    assert isinstance(decision, DeadLetter) and decision.kind is ErrorKind.RETRIES_EXHAUSTED
