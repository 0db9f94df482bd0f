"""Failed logins are limited per address; time refills them; memory stays bounded."""

from mediaflow.ops.ui.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_address_that_failed_its_burst_waits_for_a_refill_others_do_not():
    clock = Clock()
    throttle = LoginThrottle(burst=3, refill_s=30, clock=clock)
    for _ in range(3):
        assert throttle.retry_after("203.0.113.7") is None
        throttle.failed("203.0.113.7")
    assert throttle.retry_after("203.0.113.7") == 30
    assert throttle.retry_after("203.0.113.8") is None
    clock.now = 20
    assert throttle.retry_after("203.0.113.7") == 10
    clock.now = 30
    assert throttle.retry_after("203.0.113.7") is None
    throttle.failed("203.0.113.7")
    assert throttle.retry_after("203.0.113.7") == 30  # one refilled, one spent


def test_ipv6_addresses_of_one_64_block_share_a_bucket():
    throttle = LoginThrottle(burst=2, clock=Clock())
    throttle.failed("2001:db8:1:2::1")
    throttle.failed("2001:db8:1:2:ffff::9")
    assert throttle.retry_after("2001:db8:1:2::abcd") is not None
    assert throttle.retry_after("2001:db8:1:3::1") is None


def test_at_most_max_addresses_are_remembered_the_least_recent_forgotten_first():
    throttle = LoginThrottle(burst=1, max_addresses=100, clock=Clock())
    for i in range(1000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(throttle) == 100
    assert throttle.retry_after("10.0.3.231") is not None  # the last one failed
    assert throttle.retry_after("10.0.0.0") is None  # forgotten
