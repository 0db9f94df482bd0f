"""Provider adapters: webhook JSON in, routing fields and media out."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mediaflow.providers as providers
from mediaflow.errors import ErrorKind, InvalidPayload
from mediaflow.events import MediaType, Provider
from mediaflow.providers import (
    Category,
    FoundMedia,
    ParseResult,
    evolution,
    parse_webhook,
    read_envelope,
    wapi,
    zapi,
)
from mediaflow.providers._common import derive_media_id
from mediaflow.providers._waproto import MAX_DEPTH

PAYLOADS = Path(__file__).resolve().parents[2] / "fixtures" / "payloads"
CLIENT = "acme"
INSTANCE = {
    Provider.WAPI: "3B6XIW-ZTS923-GEAY6V",
    Provider.EVOLUTION: "loja-centro",
    Provider.ZAPI: "3C8A1F2B9D4E6A7C5B3D1F9E8A7C6B5D",
}
HEX32 = re.compile(r"[0-9a-f]{32}")


@cache
def _raw(name: str) -> str:
    return (PAYLOADS / f"{name}.json").read_text(encoding="utf-8")


def load(name: str) -> dict[str, Any]:
    """A fresh copy of a fixture, safe to mutate."""
    return json.loads(_raw(name))


def provider_of(name: str) -> Provider:
    return Provider(name.split("_", 1)[0])


def parse(name: str, payload: dict[str, Any] | None = None) -> ParseResult:
    provider = provider_of(name)
    body = load(name) if payload is None else payload
    return parse_webhook(provider, body, client_id=CLIENT, instance_id=INSTANCE[provider])


def visible(found: FoundMedia) -> dict[str, Any]:
    """The fields a user of the stored media would notice."""
    info = found.info
    return {
        "path": found.content_path,
        "type": info.media_type,
        "variant": info.media_variant,
        "mimetype": info.mimetype,
        "file_name": info.file_name,
        "length": info.declared_length,
        "caption": info.caption,
    }


# ------------------------------------------------------------------ what is found

IMG, VID, AUD, DOC, STK = (
    MediaType.IMAGE,
    MediaType.VIDEO,
    MediaType.AUDIO,
    MediaType.DOCUMENT,
    MediaType.STICKER,
)

MEDIA_CASES = [
    (
        "wapi_image",
        {
            "path": "imageMessage",
            "type": IMG,
            "variant": None,
            "length": 48213,
            "mimetype": "image/jpeg",
            "caption": "nota fiscal",
        },
    ),
    (
        "wapi_video",
        {
            "path": "videoMessage",
            "type": VID,
            "variant": None,
            "length": 2841973,
            "caption": "olha isso",
        },
    ),
    ("wapi_video_gif", {"path": "videoMessage", "type": VID, "variant": "gif"}),
    ("wapi_ptv", {"path": "ptvMessage", "type": VID, "variant": "ptv"}),
    (
        "wapi_audio_ptt",
        {
            "path": "audioMessage",
            "type": AUD,
            "variant": "ptt",
            "mimetype": "audio/ogg; codecs=opus",
            "length": 17822,
        },
    ),
    (
        "wapi_audio_file",
        {"path": "audioMessage", "type": AUD, "variant": None, "mimetype": "audio/mpeg"},
    ),
    (
        "wapi_document",
        {
            "path": "documentMessage",
            "type": DOC,
            "file_name": "boleto-novembro.pdf",
            "mimetype": "application/pdf",
            "length": 238114,
        },
    ),
    (
        "wapi_sticker_animated",
        {"path": "stickerMessage", "type": STK, "variant": "animated", "mimetype": "image/webp"},
    ),
    ("wapi_ephemeral_image", {"path": "ephemeralMessage.message.imageMessage", "type": IMG}),
    ("wapi_view_once_image", {"path": "viewOnceMessage.message.imageMessage", "type": IMG}),
    ("wapi_view_once_v2_video", {"path": "viewOnceMessageV2.message.videoMessage", "type": VID}),
    (
        "wapi_view_once_v2_extension_audio",
        {"path": "viewOnceMessageV2Extension.message.audioMessage", "type": AUD, "variant": "ptt"},
    ),
    (
        "wapi_document_with_caption",
        {
            "path": "documentWithCaptionMessage.message.documentMessage",
            "type": DOC,
            "file_name": "pedidos.xlsx",
            "caption": "segue a planilha",
            "length": 19377,
        },
    ),
    (
        "wapi_edited_image",
        {
            "path": "editedMessage.message.imageMessage",
            "type": IMG,
            "caption": "nota fiscal corrigida",
        },
    ),
    (
        "wapi_ephemeral_view_once_v2",
        {"path": "ephemeralMessage.message.viewOnceMessageV2.message.imageMessage", "type": IMG},
    ),
    ("wapi_image_quoting_video", {"path": "imageMessage", "type": IMG}),
    (
        "wapi_string_numbers",
        {"path": "videoMessage", "type": VID, "variant": None, "length": 5030112},
    ),
    (
        "wapi_number_numbers",
        {"path": "documentMessage", "type": DOC, "length": 48213, "file_name": "fotos.zip"},
    ),
    ("wapi_group_image", {"path": "imageMessage", "type": IMG}),
    (
        "wapi_delivery_from_me",
        {"path": "documentMessage", "type": DOC, "file_name": "orcamento.pdf"},
    ),
    (
        "evolution_image",
        {"path": "imageMessage", "type": IMG, "caption": "comprovante", "length": 48213},
    ),
    (
        "evolution_group_audio",
        {"path": "audioMessage", "type": AUD, "variant": "ptt", "length": 20441},
    ),
    (
        "zapi_image",
        {
            "path": "image",
            "type": IMG,
            "mimetype": "image/jpeg",
            "caption": "vitrine nova",
            "length": None,
        },
    ),
    (
        "zapi_document",
        {
            "path": "document",
            "type": DOC,
            "file_name": "contrato.pdf",
            "mimetype": "application/pdf",
        },
    ),
    ("zapi_audio", {"path": "audio", "type": AUD, "variant": "ptt"}),
]


@pytest.mark.parametrize(("fixture", "expected"), MEDIA_CASES, ids=[c[0] for c in MEDIA_CASES])
def test_each_media_webhook_yields_exactly_its_one_media(fixture, expected):
    result = parse(fixture)
    assert result.category is Category.MEDIA
    assert result.problems == ()
    assert len(result.media) == 1
    seen = visible(result.media[0])
    assert {key: seen[key] for key in expected} == expected
    assert HEX32.fullmatch(result.media[0].media_id)


NO_MEDIA_CASES = [
    ("wapi_text", Category.TEXT),
    ("wapi_reply_quoting_image", Category.TEXT),
    ("wapi_status", Category.STATUS),
    ("evolution_status", Category.STATUS),
    ("zapi_text", Category.TEXT),
    ("zapi_status", Category.STATUS),
]


@pytest.mark.parametrize(
    ("fixture", "category"), NO_MEDIA_CASES, ids=[c[0] for c in NO_MEDIA_CASES]
)
def test_text_status_and_quoted_media_yield_no_media(fixture, category):
    assert parse(fixture) == ParseResult(category=category)


@pytest.mark.parametrize(
    ("provider", "payload"),
    [
        (Provider.WAPI, {"event": "webhookPresence", "instanceId": "x"}),
        (Provider.EVOLUTION, {"event": "chats.update", "instance": "x", "data": []}),
        (Provider.ZAPI, {"type": "PresenceChatCallback", "instanceId": "x"}),
    ],
    ids=["wapi", "evolution", "zapi"],
)
def test_unknown_events_are_other(provider, payload):
    result = parse_webhook(provider, payload, client_id=CLIENT, instance_id="x")
    assert result == ParseResult(category=Category.OTHER)


def test_message_without_text_or_media_is_other():
    body = load("wapi_text")
    body["msgContent"] = {"reactionMessage": {"text": "👍", "key": {"id": "3EB0C767D26A1B2C4F8E"}}}
    assert parse("wapi_text", body) == ParseResult(category=Category.OTHER)


# ------------------------------------------------------------------ message-level facts

T0 = datetime(2024, 11, 28, 13, 20, 0, tzinfo=UTC)
MESSAGE_CASES = [
    # fixture, message_id, chat_id, sender_id, sender_name, from_me, is_group, timestamp
    (
        "wapi_image",
        "3EB0C767D26A1B2C4F8E",
        "5511988887777",
        "5511988887777",
        "Maria Souza",
        False,
        False,
        T0,
    ),
    (
        "wapi_group_image",
        "3EB0C6B5A49382716059",
        "120363041234567890@g.us",
        "5511977776666",
        "João",
        False,
        True,
        T0,
    ),
    (
        "wapi_delivery_from_me",
        "3EB0B5A4938271605948",
        "5511988887777",
        "5511999990000",
        "Loja Centro",
        True,
        False,
        T0,
    ),
    (
        "wapi_string_numbers",
        "3EB0E8D7C6B5A4938271",
        "5511988887777",
        "5511988887777",
        "Maria Souza",
        False,
        False,
        datetime(2024, 11, 28, 13, 22, 3, tzinfo=UTC),
    ),
    (
        "wapi_number_numbers",
        "3EB0D7C6B5A493827160",
        "5511988887777",
        "5511988887777",
        "Maria Souza",
        False,
        False,
        datetime(2024, 11, 28, 13, 22, 3, 456000, tzinfo=UTC),
    ),
    (
        "evolution_image",
        "3EB0AB12CD34EF56AB78",
        "5511988887777@s.whatsapp.net",
        "5511988887777@s.whatsapp.net",
        "Maria Souza",
        False,
        False,
        T0,
    ),
    (
        "evolution_group_audio",
        "3EB0BC23DE45FA67BC89",
        "120363041234567890@g.us",
        "5511977776666@s.whatsapp.net",
        "João",
        False,
        True,
        datetime(2024, 11, 28, 13, 22, 3, tzinfo=UTC),
    ),
    (
        "zapi_image",
        "3EB0CD34EF56AB78CD90",
        "5511988887777",
        "5511988887777",
        "Maria Souza",
        False,
        False,
        T0.replace(microsecond=123000),
    ),
    (
        "zapi_document",
        "3EB0DE45FA67BC89DE01",
        "120363041234567890-group",
        "5511977776666",
        "Maria Souza",
        False,
        True,
        T0.replace(microsecond=123000),
    ),
]


@pytest.mark.parametrize(
    ("fixture", "message_id", "chat_id", "sender_id", "sender_name", "from_me", "is_group", "at"),
    MESSAGE_CASES,
    ids=[c[0] for c in MESSAGE_CASES],
)
def test_media_carries_who_sent_it_where_and_when(
    fixture, message_id, chat_id, sender_id, sender_name, from_me, is_group, at
):
    provider = provider_of(fixture)
    info = parse(fixture).media[0].info
    assert (info.provider, info.client_id, info.instance_id) == (
        provider.value,
        CLIENT,
        INSTANCE[provider],
    )
    assert (info.message_id, info.chat_id, info.sender_id, info.sender_name) == (
        message_id,
        chat_id,
        sender_id,
        sender_name,
    )
    assert (info.from_me, info.is_group) == (from_me, is_group)
    assert info.message_timestamp == at
    assert info.message_timestamp.tzinfo is UTC


def test_delivery_without_from_me_flag_is_still_from_me():
    body = load("wapi_delivery_from_me")
    del body["fromMe"]
    assert parse("wapi_delivery_from_me", body).media[0].info.from_me is True


# ------------------------------------------------------------------ how to fetch it


def test_wapi_source_keeps_the_download_fields_as_given():
    raw = load("wapi_image")["msgContent"]["imageMessage"]
    found = parse("wapi_image").media[0]
    assert found.source.media_key == raw["mediaKey"]
    assert found.source.file_enc_sha256 == raw["fileEncSha256"]
    assert found.source.url == raw["url"]
    assert found.source.direct_path == raw["directPath"]
    assert found.info.file_sha256 == raw["fileSha256"]
    assert raw["mediaKey"] not in repr(found)


def test_evolution_source_is_read_from_data_message():
    raw = load("evolution_image")["data"]["message"]["imageMessage"]
    source = parse("evolution_image").media[0].source
    assert (source.media_key, source.direct_path) == (raw["mediaKey"], raw["directPath"])


@pytest.mark.parametrize("fixture", ["zapi_image", "zapi_document", "zapi_audio"])
def test_zapi_source_is_the_plain_link_without_key(fixture):
    found = parse(fixture).media[0]
    field = {"image": "imageUrl", "document": "documentUrl", "audio": "audioUrl"}[
        found.content_path
    ]
    assert found.source.url == load(fixture)[found.content_path][field]
    assert (found.source.media_key, found.source.direct_path, found.info.file_sha256) == (
        None,
        None,
        None,
    )


def test_url_alone_or_direct_path_alone_is_enough():
    for missing in ("url", "directPath"):
        body = load("wapi_image")
        del body["msgContent"]["imageMessage"][missing]
        result = parse("wapi_image", body)
        assert (len(result.media), result.problems) == (1, ())


def test_unpadded_and_urlsafe_base64_are_normalised():
    body = load("wapi_image")
    original = body["msgContent"]["imageMessage"]["mediaKey"]
    body["msgContent"]["imageMessage"]["mediaKey"] = (
        original.rstrip("=").replace("+", "-").replace("/", "_")
    )
    assert parse("wapi_image", body).media[0].source.media_key == original


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("48213", 48213),
        (48213, 48213),
        (" 48213 ", 48213),
        (48213.0, 48213),
        ("-5", None),
        (-5, None),
        ("12kb", None),
        ("", None),
        (None, None),
        (True, None),
        ("4.5", None),
        ("٤٨٢", None),
        (2**64, None),
    ],
    ids=repr,
)
def test_declared_length_is_coerced_or_left_unknown(value, expected):
    body = load("wapi_image")
    body["msgContent"]["imageMessage"]["fileLength"] = value
    result = parse("wapi_image", body)
    assert result.problems == ()
    assert result.media[0].info.declared_length == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1732800000", T0),
        (1732800000, T0),
        ("abc", None),
        (-1, None),
        (None, None),
        (10**30, None),
        (float("inf"), None),
    ],
    ids=repr,
)
def test_moment_is_coerced_or_left_unknown(value, expected):
    body = load("wapi_image")
    body["moment"] = value
    assert parse("wapi_image", body).media[0].info.message_timestamp == expected


# ------------------------------------------------------------------ media ids


def test_media_id_is_stable_across_redeliveries():
    first = parse("wapi_image").media[0].media_id
    again = parse("wapi_image").media[0].media_id
    redelivered = load("wapi_image")
    redelivered["event"] = "webhookDelivery"
    assert first == again == parse("wapi_image", redelivered).media[0].media_id


def test_media_id_follows_the_documented_rule():
    found = parse("wapi_ephemeral_image").media[0]
    seed = "wapi|3B6XIW-ZTS923-GEAY6V|3EB0D4C3B2A190817263|ephemeralMessage.message.imageMessage"
    assert found.media_id == hashlib.sha256(seed.encode()).hexdigest()[:32]


def test_media_ids_differ_across_messages_and_instances():
    ids = {parse(name).media[0].media_id for name, _ in MEDIA_CASES}
    assert len(ids) == len(MEDIA_CASES)
    other_instance = parse_webhook(
        Provider.WAPI, load("wapi_image"), client_id=CLIENT, instance_id="OTHER"
    )
    assert other_instance.media[0].media_id != parse("wapi_image").media[0].media_id


def test_media_id_falls_back_to_file_sha256_without_message_id():
    body = load("wapi_image")
    del body["messageId"]
    first = parse("wapi_image", body).media[0]
    other = load("wapi_group_image")
    del other["messageId"]
    assert first.info.message_id == ""
    assert first.media_id == parse("wapi_image", copy.deepcopy(body)).media[0].media_id
    assert first.media_id != parse("wapi_group_image", other).media[0].media_id


def test_media_without_message_id_or_file_hash_is_a_problem():
    body = load("zapi_image")
    del body["messageId"]
    result = parse("zapi_image", body)
    assert result.media == ()
    assert [(p.content_path, p.error.kind, p.media_id) for p in result.problems] == [
        ("image", ErrorKind.MISSING_FIELDS, None)
    ]


# ------------------------------------------------------------------ malformed input

PROBLEM_CASES = [
    ("wapi_media_without_url", ErrorKind.MISSING_FIELDS, "neither url nor directPath"),
    ("wapi_media_key_wrong_length", ErrorKind.INVALID_PAYLOAD, "mediaKey decodes to 31 bytes"),
]


@pytest.mark.parametrize(
    ("fixture", "kind", "says"), PROBLEM_CASES, ids=[c[0] for c in PROBLEM_CASES]
)
def test_undownloadable_media_is_returned_as_a_problem(fixture, kind, says):
    result = parse(fixture)
    assert (result.category, result.media) == (Category.MEDIA, ())
    [problem] = result.problems
    assert (problem.content_path, problem.error.kind) == ("imageMessage", kind)
    assert says in problem.error.message
    assert problem.media_id == derive_media_id(
        Provider.WAPI, INSTANCE[Provider.WAPI], load(fixture)["messageId"], "imageMessage"
    )


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("mediaKey", None, ErrorKind.MISSING_FIELDS),
        ("mediaKey", "not base64!", ErrorKind.INVALID_PAYLOAD),
        ("mediaKey", 12345, ErrorKind.INVALID_PAYLOAD),
        ("fileEncSha256", "AAAA", ErrorKind.INVALID_PAYLOAD),
        ("fileSha256", "%%%", ErrorKind.INVALID_PAYLOAD),
    ],
    ids=["key-missing", "key-garbage", "key-number", "enc-short", "sha-garbage"],
)
def test_bad_key_or_hash_is_a_problem_that_never_leaks_the_value(field, value, kind):
    body = load("wapi_image")
    body["msgContent"]["imageMessage"][field] = value
    [problem] = parse("wapi_image", body).problems
    assert problem.error.kind is kind
    assert field in problem.error.message
    assert str(value) not in problem.error.message or value is None


def test_good_and_bad_media_in_one_webhook_are_both_reported():
    body = load("wapi_image")
    body["msgContent"]["ephemeralMessage"] = {
        "message": load("wapi_media_without_url")["msgContent"]
    }
    result = parse("wapi_image", body)
    assert [m.content_path for m in result.media] == ["imageMessage"]
    assert [p.content_path for p in result.problems] == ["ephemeralMessage.message.imageMessage"]


def test_media_key_that_is_not_an_object_is_a_problem():
    body = load("wapi_image")
    body["msgContent"] = {"imageMessage": "https://mmg.whatsapp.net/x.enc"}
    [problem] = parse("wapi_image", body).problems
    assert problem.error.kind is ErrorKind.INVALID_PAYLOAD


def _nest(content: dict[str, Any], levels: int) -> dict[str, Any]:
    for _ in range(levels):
        content = {"ephemeralMessage": {"message": content}}
    return content


def test_wrappers_are_followed_up_to_the_depth_limit():
    body = load("wapi_image")
    body["msgContent"] = _nest(body["msgContent"], MAX_DEPTH)
    [found] = parse("wapi_image", body).media
    assert found.content_path.count("ephemeralMessage.message.") == MAX_DEPTH


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 5000])
def test_wrappers_beyond_the_depth_limit_are_a_problem_not_a_crash(levels):
    body = load("wapi_image")
    body["msgContent"] = _nest(body["msgContent"], levels)
    result = parse("wapi_image", body)
    assert result.media == ()
    [problem] = result.problems
    assert "deeper than" in problem.error.message


ENVELOPE_ERRORS = [
    ("wapi_missing_instance_id", None, "instanceId"),
    ("wapi_image", "event", "event"),
    ("evolution_image", "instance", "instance"),
    ("zapi_image", "type", "type"),
]


@pytest.mark.parametrize(
    ("fixture", "drop", "names"), ENVELOPE_ERRORS, ids=[f"{c[0]}-{c[2]}" for c in ENVELOPE_ERRORS]
)
def test_envelope_without_instance_or_event_is_rejected_naming_the_field(fixture, drop, names):
    body = load(fixture)
    if drop:
        del body[drop]
    with pytest.raises(InvalidPayload) as caught:
        read_envelope(provider_of(fixture), body)
    assert caught.value.kind is ErrorKind.MISSING_FIELDS
    assert caught.value.message == f"field '{names}' is missing or not a string"


@pytest.mark.parametrize(
    ("fixture", "path", "field"),
    [
        ("wapi_image", ("chat",), "chat.id"),
        ("wapi_image", ("msgContent",), "msgContent"),
        ("evolution_image", ("data", "key", "remoteJid"), "data.key.remoteJid"),
        ("evolution_image", ("data", "message"), "data.message"),
        ("zapi_image", ("phone",), "phone"),
    ],
    ids=["wapi-chat", "wapi-content", "evolution-chat", "evolution-content", "zapi-chat"],
)
def test_message_without_chat_or_content_is_rejected(fixture, path, field):
    body = load(fixture)
    holder = body
    for key in path[:-1]:
        holder = holder[key]
    del holder[path[-1]]
    with pytest.raises(InvalidPayload, match=re.escape(f"'{field}'")) as caught:
        parse(fixture, body)
    assert caught.value.kind is ErrorKind.MISSING_FIELDS


@pytest.mark.parametrize("payload", [[], "x", None, 3], ids=repr)
def test_non_object_payload_is_rejected(payload):
    for provider in Provider:
        with pytest.raises(InvalidPayload):
            read_envelope(provider, payload)
        with pytest.raises(InvalidPayload):
            parse_webhook(provider, payload, client_id=CLIENT, instance_id="x")


def test_unknown_provider_is_rejected_as_unsupported():
    with pytest.raises(InvalidPayload) as caught:
        parse_webhook("twilio", load("wapi_image"), client_id=CLIENT, instance_id="x")
    assert caught.value.kind is ErrorKind.UNSUPPORTED
    assert "evolution, wapi, zapi" in caught.value.message


# ------------------------------------------------------------------ envelope fields

ENVELOPE_CASES = [
    (
        "wapi_image",
        "3B6XIW-ZTS923-GEAY6V",
        "webhookReceived",
        "3EB0C767D26A1B2C4F8E",
        "5511988887777",
    ),
    (
        "wapi_status",
        "3B6XIW-ZTS923-GEAY6V",
        "webhookStatus",
        "3EB0C767D26A1B2C4F8E",
        "5511988887777",
    ),
    (
        "evolution_group_audio",
        "loja-centro",
        "messages.upsert",
        "3EB0BC23DE45FA67BC89",
        "120363041234567890@g.us",
    ),
    ("evolution_status", "loja-centro", "messages.update", None, None),
    (
        "zapi_image",
        "3C8A1F2B9D4E6A7C5B3D1F9E8A7C6B5D",
        "ReceivedCallback",
        "3EB0CD34EF56AB78CD90",
        "5511988887777",
    ),
    (
        "zapi_status",
        "3C8A1F2B9D4E6A7C5B3D1F9E8A7C6B5D",
        "MessageStatusCallback",
        None,
        "5511988887777",
    ),
]


@pytest.mark.parametrize(
    ("fixture", "instance", "event", "message", "chat"),
    ENVELOPE_CASES,
    ids=[c[0] for c in ENVELOPE_CASES],
)
def test_envelope_fields(fixture, instance, event, message, chat):
    module = {Provider.WAPI: wapi, Provider.EVOLUTION: evolution, Provider.ZAPI: zapi}
    body = load(fixture)
    fields = module[provider_of(fixture)].envelope_fields(body)
    assert fields == read_envelope(provider_of(fixture).value, body)
    assert (fields.instance_id, fields.event_type, fields.message_id, fields.chat_id) == (
        instance,
        event,
        message,
        chat,
    )


def test_package_exports_exactly_the_public_names():
    assert providers.__all__ == sorted(providers.__all__)
    assert set(providers.__all__) == {
        "Category",
        "EnvelopeFields",
        "FoundMedia",
        "InvalidMedia",
        "ParseResult",
        "parse_webhook",
        "read_envelope",
    }


# ------------------------------------------------------------------ never crashes

KEYS = st.sampled_from(
    [
        "imageMessage",
        "videoMessage",
        "ptvMessage",
        "audioMessage",
        "documentMessage",
        "stickerMessage",
        "conversation",
        "extendedTextMessage",
        "ephemeralMessage",
        "viewOnceMessage",
        "viewOnceMessageV2",
        "documentWithCaptionMessage",
        "editedMessage",
        "message",
        "contextInfo",
        "quotedMessage",
        "url",
        "directPath",
        "mediaKey",
        "fileSha256",
        "fileEncSha256",
        "fileLength",
        "mimetype",
        "fileName",
        "caption",
        "ptt",
        "gifPlayback",
        "isAnimated",
        "image",
        "imageUrl",
        "audio",
        "audioUrl",
        "document",
        "documentUrl",
    ]
) | st.text(max_size=8)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=50)
    | st.sampled_from(
        [
            "48213",
            "-1",
            "1e309",
            "NaN",
            "AAAA",
            "\ud800",
            "https://x/y.enc",
            "stiL9WAcObWvugPMCLxloo6rmTPdq84mHMnQhgKDuIg=",
        ]
    )
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=40,
)
OBJECTS = st.dictionaries(KEYS, JSONISH, max_size=8)


def _outcome(provider: Provider, payload: Any) -> ParseResult | None:
    try:
        result = parse_webhook(provider, payload, client_id=CLIENT, instance_id="i")
    except InvalidPayload:
        return None
    for found in result.media:
        assert HEX32.fullmatch(found.media_id)
        for value in (found.info.caption, found.info.file_name, found.info.chat_id):
            if value is not None:
                value.encode("utf-8")  # the Avro codec must be able to write every string
    return result


FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WAPI_IMAGE = load("wapi_image")
EVOLUTION_IMAGE = load("evolution_image")
ZAPI_IMAGE = load("zapi_image")


@FAST
@given(content=OBJECTS)
def test_any_message_content_parses_or_raises_invalid_payload(content):
    _outcome(Provider.WAPI, {**WAPI_IMAGE, "msgContent": content})
    evolution_data = {**EVOLUTION_IMAGE["data"], "message": content}
    _outcome(Provider.EVOLUTION, {**EVOLUTION_IMAGE, "data": evolution_data})
    _outcome(Provider.ZAPI, {**ZAPI_IMAGE, **content})


@FAST
@given(payload=JSONISH | OBJECTS)
def test_any_payload_parses_or_raises_invalid_payload(payload):
    for provider in Provider:
        _outcome(provider, payload)
        with contextlib.suppress(InvalidPayload):
            read_envelope(provider, payload)


MEDIA_FIELD_NAMES = st.sampled_from(
    [
        "url",
        "directPath",
        "mediaKey",
        "fileSha256",
        "fileEncSha256",
        "fileLength",
        "mimetype",
        "fileName",
        "caption",
        "ptt",
        "gifPlayback",
        "isAnimated",
        "contextInfo",
    ]
)
WRAPPERS = st.sampled_from(
    [
        "ephemeralMessage",
        "viewOnceMessage",
        "viewOnceMessageV2",
        "viewOnceMessageV2Extension",
        "documentWithCaptionMessage",
        "editedMessage",
    ]
)


@FAST
@given(
    key=st.sampled_from(
        [
            "imageMessage",
            "videoMessage",
            "ptvMessage",
            "audioMessage",
            "documentMessage",
            "stickerMessage",
        ]
    ),
    changes=st.dictionaries(MEDIA_FIELD_NAMES, JSONISH, max_size=5),
    wrappers=st.lists(WRAPPERS, max_size=3),
)
def test_a_damaged_media_object_is_found_or_reported_never_raised(key, changes, wrappers):
    content: dict[str, Any] = {key: {**WAPI_IMAGE["msgContent"]["imageMessage"], **changes}}
    for wrapper in wrappers:
        content = {wrapper: {"message": content}}
    result = parse("wapi_image", {**WAPI_IMAGE, "msgContent": content})
    assert result.category is Category.MEDIA
    assert len(result.media) + len(result.problems) == 1
    for problem in result.problems:
        assert problem.error.kind in (ErrorKind.MISSING_FIELDS, ErrorKind.INVALID_PAYLOAD)
