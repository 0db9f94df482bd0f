"""Webhook builders produce bodies the provider parsers accept, with the right media."""

from __future__ import annotations

import pytest

from mediaflow.events import MediaType
from mediaflow.providers import Category, parse_webhook
from simulator.media import MediaLibrary
from simulator.sender import expected_media
from simulator.webhooks import WRAPPERS, WebhookFactory

CDN = "http://127.0.0.1:8091"


@pytest.fixture
def factory() -> WebhookFactory:
    return WebhookFactory(
        MediaLibrary(seed=2, max_size=3_000), cdn_url=CDN, files_url="http://127.0.0.1:8090", seed=2
    )


def _parse(hook):
    return parse_webhook(hook.provider, hook.payload(), client_id="2", instance_id=hook.instance_id)


@pytest.mark.parametrize(
    ("media_type", "variant"),
    [
        (MediaType.IMAGE, None),
        (MediaType.VIDEO, None),
        (MediaType.VIDEO, "gif"),
        (MediaType.VIDEO, "ptv"),
        (MediaType.AUDIO, "ptt"),
        (MediaType.AUDIO, None),
        (MediaType.DOCUMENT, None),
        (MediaType.STICKER, "animated"),
    ],
)
def test_wapi_media_webhook_parses_to_one_media_of_its_type(factory, media_type, variant):
    media = factory.library.make(media_type, variant)
    result = _parse(factory.wapi_media(media))

    assert [m.info.media_type for m in result.media] == [media_type.value]


@pytest.mark.parametrize(
    ("wrapper", "media_type"),
    [(w, t) for w, types in sorted(WRAPPERS.items()) for t in sorted(types)],
)
def test_wrapped_media_is_found_inside_its_wrapper(factory, wrapper, media_type):
    variant = "ptt" if media_type is MediaType.AUDIO else None
    media = factory.library.make(media_type, variant)

    assert len(_parse(factory.wapi_media(media, wrapper=wrapper)).media) == 1


def test_media_url_points_at_the_fake_cdn(factory):
    media = factory.library.make(MediaType.IMAGE)
    body = factory.wapi_media(media).payload()

    assert body["msgContent"]["imageMessage"]["url"].startswith(CDN + media.direct_path)


def test_group_and_from_me_deliveries_carry_their_media(factory):
    group = factory.wapi_media(factory.library.make(MediaType.IMAGE), group=True)
    delivery = factory.wapi_media(factory.library.make(MediaType.DOCUMENT), from_me=True)

    assert len(_parse(group).media) == 1
    assert delivery.payload()["event"] == "webhookDelivery"
    assert len(_parse(delivery).media) == 1


def test_evolution_and_zapi_media_parse(factory):
    evolution = factory.evolution_media(factory.library.make(MediaType.AUDIO, "ptt"))
    zapi = factory.zapi_media(factory.library.make(MediaType.DOCUMENT))

    assert len(_parse(evolution).media) == 1
    assert len(_parse(zapi).media) == 1


def test_text_and_status_webhooks_carry_no_media(factory):
    assert _parse(factory.wapi_text()).category is Category.TEXT
    assert _parse(factory.wapi_status()).category is Category.STATUS
    assert _parse(factory.zapi_status()).category is Category.STATUS
    assert _parse(factory.evolution_status()).category is Category.STATUS


def test_redelivery_yields_the_same_media_id(factory):
    hook = factory.wapi_media(factory.library.make(MediaType.IMAGE))

    assert expected_media(factory.redelivery(hook)) == expected_media(hook)


def test_broken_media_is_reported_as_never_downloadable(factory):
    hook = factory.broken_media(factory.library.make(MediaType.IMAGE))

    media, invalid = expected_media(hook)
    assert (media, len(invalid)) == ((), 1)


def test_a_fanout_webhook_carries_every_one_of_its_media_nested_in_wrappers(factory):
    hook = factory.wapi_fanout(12)

    media, invalid = expected_media(hook)
    assert (hook.kind, len(hook.media), len(set(media)), invalid) == ("fanout", 12, 12, ())
    assert len({w for w in hook.body.decode().split('"') if w in WRAPPERS}) == len(WRAPPERS)


def test_a_fanout_webhook_stays_within_the_parsers_wrapper_depth(factory):
    assert len(expected_media(factory.wapi_fanout(32))[0]) == 32
    with pytest.raises(ValueError, match="2 to 32"):
        factory.wapi_fanout(33)


def test_malformed_json_is_not_json(factory):
    with pytest.raises(ValueError):
        factory.malformed_json().payload()


def test_mixed_batch_is_reproducible_from_its_seed():
    def bodies() -> list[bytes]:
        library = MediaLibrary(seed=5, max_size=2_000)
        factory = WebhookFactory(library, cdn_url=CDN, files_url=CDN, seed=5)
        return [h.body for h in factory.mixed(60)]

    assert bodies() == bodies()


def test_every_parseable_body_of_a_mixed_batch_is_accepted_by_the_parsers(factory):
    for hook in factory.mixed(150):
        if hook.kind != "malformed_json":
            _parse(hook)
