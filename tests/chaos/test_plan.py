"""Media built to fail are marked in the ledger and made to fail by the simulated hosts (pure)."""

from __future__ import annotations

from simulator.faults import Faults, Outcome
from simulator.media import MediaLibrary
from simulator.webhooks import WebhookFactory
from tests.chaos.run import short_plan, with_expired

CDN = "http://127.0.0.1:8091"


def test_expired_messages_are_sent_once_carry_their_fate_and_fail_on_every_host() -> None:
    factory = WebhookFactory(
        MediaLibrary(seed=2, max_size=3_000), cdn_url=CDN, files_url=CDN, seed=2
    )
    batch = factory.mixed(200)
    faults = Faults(error_rate=1.0, seed=1, targets=frozenset({"wapi", "cdn"}))
    plan = short_plan()
    marked = with_expired(batch, faults, plan)

    expired = {h.message_id for h in marked if h.fate == "expired"}
    assert len(expired) == plan.expired
    # Messages sent once (a redelivery would be dead-lettered again), nothing else changed.
    assert sum(h.message_id in expired for h in marked) == plan.expired
    assert [h.body for h in marked] == [h.body for h in batch]
    for hook in marked:
        if hook.fate == "expired":
            (media,) = hook.media
            # Expired before any random fault: the same answer on every request.
            assert faults.decide("cdn", media.cdn_id).outcome is Outcome.EXPIRED
            assert faults.decide("wapi", media.cdn_id).outcome is Outcome.PROVIDER_ERROR
