"""Health, readiness, metrics, an unreachable broker, and secrets kept out of logs."""

from __future__ import annotations

import asyncio
import gc
import io
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mediaflow import logging as mflog
from mediaflow.config import REPO_ROOT, Settings
from mediaflow.errors import BrokerUnavailable
from mediaflow.kafka.topics import load_layout
from mediaflow.producers.webhook import AsyncProducer
from tests.support.webhook import WAPI_SECRET, receiver_client, serving, write_tenants

pytestmark = pytest.mark.integration

IMAGE = (REPO_ROOT / "tests" / "fixtures" / "payloads" / "wapi_image.json").read_bytes()
JSON = {"Content-Type": "application/json"}


async def test_unreachable_broker_gives_503_with_retry_after_and_not_ready(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(
        create=False, kafka_bootstrap_servers="127.0.0.1:1", webhook_delivery_timeout_s=1
    )
    async with receiver_client(settings, write_tenants(tmp_path)) as client:
        response = await client.post(
            "/webhooks/wapi", data=IMAGE, headers=JSON, params={"token": WAPI_SECRET}
        )
        ready = await client.get("/readyz")
        assert response.status == 503
        assert int(response.headers["Retry-After"]) > 0
        assert (await response.json())["error"] == "unavailable"
        assert ready.status == 503


async def test_ready_and_alive_with_a_reachable_broker_and_its_topic(
    settings: Settings, tmp_path: Path
) -> None:
    async with receiver_client(settings, write_tenants(tmp_path)) as client:
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 200


async def test_a_missing_topic_makes_the_receiver_unready_and_names_the_topic(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(create=False)  # the broker is up; the topics were never created
    topic = load_layout(settings.kafka).webhooks
    async with receiver_client(settings, write_tenants(tmp_path)) as client:
        ready = await client.get("/readyz")
        assert (await client.get("/healthz")).status == 200
        assert ready.status == 503
        assert await ready.json() == {
            "error": "not_ready",
            "detail": f"topic {topic} does not exist on the cluster; "
            "create it: mediaflow topics apply",
        }


async def test_metrics_count_requests_by_status_and_produce_latency(
    settings: Settings, tmp_path: Path
) -> None:
    async with receiver_client(settings, write_tenants(tmp_path)) as client:
        await client.post("/webhooks/wapi", data=IMAGE, headers=JSON, params={"token": WAPI_SECRET})
        await client.post("/webhooks/wapi", data=IMAGE, headers=JSON, params={"token": "wrong"})
        text = await (await client.get("/metrics")).text()
    assert 'mediaflow_webhook_requests_total{provider="wapi",status="200"}' in text
    assert 'mediaflow_webhook_requests_total{provider="wapi",status="401"}' in text
    assert "mediaflow_webhook_produce_seconds_bucket" in text
    assert "mediaflow_webhook_in_flight" in text
    assert 'mediaflow_webhook_request_bytes_total{provider="wapi"}' in text
    assert WAPI_SECRET not in text


async def test_a_webhook_secret_never_appears_in_the_logs(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = io.StringIO()
    mflog.configure(fmt="json", level="debug", stream=stream)
    try:
        async with receiver_client(settings, write_tenants(tmp_path)) as client:
            for params, headers in [
                ({"token": WAPI_SECRET}, JSON),
                ({}, {**JSON, "X-Webhook-Token": WAPI_SECRET}),
                ({"token": WAPI_SECRET + "x"}, JSON),
            ]:
                await client.post("/webhooks/wapi", data=IMAGE, headers=headers, params=params)
            await client.post(f"/webhooks/wapi?token={WAPI_SECRET}", data=b"{bad", headers=JSON)
            # aiohttp's parser refuses this header and logs it, quoting its bytes.
            reader, writer = await asyncio.open_connection(client.host, client.port)
            head = f"POST /webhooks/wapi HTTP/1.1\r\nX-Webhook-Token: {WAPI_SECRET}\x00\r\n\r\n"
            writer.write(head.encode())
            assert (await reader.readline()).startswith(b"HTTP/1.0 400 ")
            writer.close()
    finally:
        # Not sys.stderr: during this test it is capsys's stream, closed after it.
        mflog.configure(fmt="json", level="warning", stream=sys.__stderr__)
    logged = stream.getvalue() + "".join(capsys.readouterr())
    assert "webhook_accepted" in logged and "webhook_rejected" in logged
    assert "http_request_malformed" in logged
    assert WAPI_SECRET not in logged


async def test_a_full_local_queue_is_broker_unavailable_at_once(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(create=False, kafka_bootstrap_servers="127.0.0.1:1")
    producer = AsyncProducer(settings.kafka, delivery_timeout_s=1, queue_max_messages=1)
    try:
        first = producer.send("t", b"k", b"v", [])
        await asyncio.sleep(0)  # the first record takes the only queue slot
        with pytest.raises(BrokerUnavailable, match="queue is full"):
            await producer.send("t", b"k", b"v", [])
        with pytest.raises(BrokerUnavailable):
            await first
    finally:
        await producer.close(timeout_s=0)


async def test_a_full_batch_goes_to_the_broker_without_waiting_out_the_linger(
    make_settings: Callable[..., Settings],
) -> None:
    # Under load batches fill before the linger ends, so webhooks do not wait it out.
    settings = make_settings(
        webhook_linger_ms=30_000, webhook_batch_messages=4, webhook_delivery_timeout_s=40
    )
    topic = load_layout(settings.kafka).webhooks
    producer = AsyncProducer.from_settings(settings)
    try:
        sends = [producer.send(topic, b"k", b"record %d" % n, []) for n in range(4)]
        try:
            await asyncio.wait_for(asyncio.gather(*sends), timeout=20)
        except TimeoutError:
            pytest.fail("a batch of WEBHOOK_BATCH_MESSAGES records waited for the linger")
    finally:
        await producer.close(timeout_s=0)


async def test_the_startup_heap_is_out_of_the_collectors_sight_while_serving(
    settings: Settings, tmp_path: Path
) -> None:
    # A full collection walked every module loaded, some 70,000 objects: 55-90 ms
    # during which every request in flight waited.
    assert gc.get_freeze_count() == 0
    async with serving(settings, write_tenants(tmp_path)):
        assert gc.get_freeze_count() > 10_000
    assert gc.get_freeze_count() == 0
