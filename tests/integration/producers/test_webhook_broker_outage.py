"""The broker stops and comes back: 503s while it is gone, and every 200 is on the topic.

This test stops the shared local Kafka for a few seconds (``deploy/stack.sh``
restarts it in a ``finally``); the suite runs its tests one at a time.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from mediaflow.codec import AvroCodec
from mediaflow.config import REPO_ROOT
from mediaflow.kafka.topics import load_layout
from tests.support.kafka import read_all
from tests.support.webhook import WAPI_INSTANCE, WAPI_SECRET, receiver_client, write_tenants

pytestmark = pytest.mark.integration

STACK = REPO_ROOT / "deploy" / "stack.sh"
TEMPLATE = json.loads(
    (REPO_ROOT / "tests" / "fixtures" / "payloads" / "wapi_image.json").read_text()
)


def body(n: int) -> bytes:
    payload = dict(TEMPLATE, messageId=f"OUTAGE{n:06d}", instanceId=WAPI_INSTANCE)
    return json.dumps(payload).encode()


def stack(*args: str) -> None:
    subprocess.run(["bash", str(STACK), *args], check=True, timeout=180, capture_output=True)


async def post(client, n: int) -> int:
    answer = await client.post(
        f"/webhooks/wapi?token={WAPI_SECRET}",
        data=body(n),
        headers={"Content-Type": "application/json"},
    )
    if answer.status == 503:
        assert answer.headers.get("Retry-After"), "a 503 must tell the provider when to retry"
    return answer.status


async def test_broker_outage_gives_503_and_every_200_is_on_the_topic(make_settings, tmp_path):
    settings = make_settings(webhook_delivery_timeout_s=3)
    layout = load_layout(settings.kafka)
    statuses: dict[int, int] = {}
    async with receiver_client(settings, write_tenants(tmp_path)) as client:
        for n in range(5):
            statuses[n] = await post(client, n)
        try:
            stack("down", "kafka")
            for n in range(5, 10):
                statuses[n] = await post(client, n)
            ready_while_down = (await client.get("/readyz")).status
        finally:
            stack("up", "kafka")
        deadline = time.monotonic() + 60
        n = 10
        while time.monotonic() < deadline and list(statuses.values())[-3:] != [200] * 3:
            statuses[n] = await post(client, n)
            n += 1

    assert [statuses[n] for n in range(5)] == [200] * 5
    assert [statuses[n] for n in range(5, 10)] == [503] * 5
    assert ready_while_down == 503
    assert list(statuses.values())[-3:] == [200] * 3, "the receiver never recovered"
    codec = AvroCodec()
    on_topic = {
        json.loads(codec.decode(m.value()).body)["messageId"]
        for m in read_all(settings, layout.webhooks, timeout=20)
    }
    acknowledged = {f"OUTAGE{n:06d}" for n, status in statuses.items() if status == 200}
    assert acknowledged <= on_topic, f"acknowledged but lost: {sorted(acknowledged - on_topic)}"
