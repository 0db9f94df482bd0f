"""The demo's callback receiver: verifies each signature as a platform would, counts once."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from simulator.callbacks import CallbackReceiver, summary

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
BODY = b'{"type":"media.stored","data":{"media_id":"m1"}}'


def post(url: str, body: bytes, webhook_id: str, secret: str = SECRET) -> int:
    now = datetime.now(UTC)
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, now, body),
        "Content-Type": "application/json",
    }
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_a_signed_notification_is_counted_once_and_a_forged_one_refused() -> None:
    with CallbackReceiver(SECRET) as receiver:
        assert post(receiver.url, BODY, "evt-1") == 204
        assert post(receiver.url, BODY, "evt-1") == 204  # a redelivery
        forged = "whsec_" + base64.b64encode(b"x" * 32).decode()
        assert post(receiver.url, BODY, "evt-2", secret=forged) == 401
    assert receiver.media_ids() == {"m1"}
    assert (receiver.attempts, receiver.refused) == (3, 1)
    assert summary(receiver, {"m1", "m2"}) == (
        'callbacks delivered 1 / expected 2; 1 refused (bad signature); missing: ["m2"]'
    )


@pytest.mark.parametrize("tamper", [b" ", b"{}"])
def test_a_body_changed_after_signing_is_refused(tamper: bytes) -> None:
    with CallbackReceiver(SECRET) as receiver:
        now = datetime.now(UTC)
        headers = {
            "webhook-id": "evt-3",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(SECRET).sign("evt-3", now, BODY),
        }
        request = urllib.request.Request(
            receiver.url, data=BODY + tamper, headers=headers, method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
    assert receiver.media_ids() == set()
