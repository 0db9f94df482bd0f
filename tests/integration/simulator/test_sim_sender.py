"""The webhook sender against the real receiver (real Kafka): who got a 200, and why not."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.media import MediaLibrary
from simulator.sender import send_webhooks
from simulator.webhooks import WebhookFactory
from tests.support.webhook import (
    EVOLUTION_INSTANCE,
    EVOLUTION_SECRET,
    WAPI_INSTANCE,
    WAPI_SECRET,
    receiver_client,
    write_tenants,
)

pytestmark = pytest.mark.integration

SECRETS = {WAPI_INSTANCE: WAPI_SECRET, EVOLUTION_INSTANCE: EVOLUTION_SECRET}


def _factory() -> WebhookFactory:
    library = MediaLibrary(seed=3, max_size=1_000)
    return WebhookFactory(library, cdn_url="http://127.0.0.1:1", files_url="http://127.0.0.1:2")


async def test_parseable_bodies_of_known_tenants_are_accepted_and_their_media_listed(
    settings, tmp_path: Path
):
    factory = _factory()
    hooks = [factory.wapi_media(factory.library.mixed(1)[0]) for _ in range(5)]
    hooks += [factory.evolution_media(factory.library.mixed(1)[0]), factory.wapi_text()]
    hooks.append(factory.redelivery(hooks[0]))
    async with receiver_client(settings, write_tenants(tmp_path)) as client:
        summary = await send_webhooks(
            hooks, base_url=str(client.make_url("")), secrets=SECRETS, concurrency=4
        )

    assert summary.by_status() == {200: len(hooks)}
    assert len(summary.media_ids()) == 6


async def test_malformed_bodies_and_wrong_secrets_are_counted_as_rejected(settings, tmp_path: Path):
    factory = _factory()
    # The secret is checked before the body is read: the malformed body comes
    # with the right one, so that its body is what gets it refused.
    hooks = [factory.malformed_json(), factory.evolution_media(factory.library.mixed(1)[0])]
    secrets = {WAPI_INSTANCE: WAPI_SECRET, EVOLUTION_INSTANCE: "wrong"}
    async with receiver_client(settings, write_tenants(tmp_path)) as client:
        summary = await send_webhooks(hooks, base_url=str(client.make_url("")), secrets=secrets)

    assert sorted(d.status for d in summary.rejected) == [400, 401]
