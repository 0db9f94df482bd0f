import pytest

from mediaflow.producers.webhook.budget import BodyBudget
from mediaflow.producers.webhook.validation import Rejected
from mediaflow.serving import RETRY_AFTER_S


def test_leases_take_up_to_the_capacity_together() -> None:
    budget = BodyBudget(100)
    first, second = budget.lease(), budget.lease()
    first.take(60)
    second.take(40)
    assert budget.used == 100


def test_a_piece_past_the_capacity_is_a_503_with_retry_after_and_is_not_held() -> None:
    budget = BodyBudget(100)
    budget.lease().take(60)
    late = budget.lease()
    with pytest.raises(Rejected) as caught:
        late.take(41)
    assert (caught.value.status, caught.value.error) == (503, "too_busy")
    assert caught.value.headers == {"Retry-After": str(RETRY_AFTER_S)}
    assert (budget.used, late.held) == (60, 0)


def test_a_lease_gives_everything_back_when_its_request_ends_however_it_ends() -> None:
    budget = BodyBudget(100)
    with pytest.raises(Rejected), budget.lease() as lease:
        lease.take(30)
        lease.take(30)
        lease.take(50)  # refused: the two pieces taken are still given back
    assert budget.used == 0
