from datetime import UTC, datetime, timedelta, timezone

from mediaflow.events import MediaInfo, MediaType
from mediaflow.processors.downloader import keys

MOMENT = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
MEDIA_ID = "5f1c0e9a7b3d4c2e8a6f0b1d3c5e7a9b"
SHA = "ab" * 32


def info(**overrides: object) -> MediaInfo:
    values: dict[str, object] = {
        "provider": "wapi",
        "client_id": "2",
        "instance_id": "3B6XIW-ZTS923-GEAY6V",
        "message_id": "3EB0C767D26A1B2C4F8E",
        "chat_id": "5511",
        "media_type": MediaType.IMAGE,
        "mimetype": "image/jpeg",
        "message_timestamp": MOMENT,
    }
    values.update(overrides)
    return MediaInfo(**values)  # type: ignore[arg-type]


def test_key_follows_the_layout_with_the_message_date_and_hash() -> None:
    moment = datetime(2024, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-3)))
    key = keys.object_key(info(message_timestamp=moment), MEDIA_ID, SHA)
    assert key == (
        "cliente_2/instance_3B6XIW-ZTS923-GEAY6V/image/2025/01/01/"
        "3EB0C767D26A1B2C4F8E-abababababab.jpg"
    )


def test_a_message_without_timestamp_goes_to_the_undated_folder() -> None:
    key = keys.object_key(info(message_timestamp=None), MEDIA_ID, SHA)
    assert key == (
        "cliente_2/instance_3B6XIW-ZTS923-GEAY6V/image/undated/"
        "3EB0C767D26A1B2C4F8E-abababababab.jpg"
    )


def test_a_media_without_message_id_has_a_prefix_of_its_own() -> None:
    first = keys.key_prefix(info(message_id=""), MEDIA_ID)
    other = keys.key_prefix(info(message_id=""), "0" * 32)
    assert first == f"cliente_2/instance_3B6XIW-ZTS923-GEAY6V/image/2025/03/04/unknown-{MEDIA_ID}-"
    assert not other.startswith(first) and not first.startswith(other)


def test_a_message_id_with_nothing_safe_in_it_counts_as_none() -> None:
    assert keys.key_prefix(info(message_id="\u202e\u2066"), MEDIA_ID).endswith(
        f"/unknown-{MEDIA_ID}-"
    )


def test_hostile_segments_cannot_escape_their_folder() -> None:
    key = keys.object_key(info(client_id="../../etc", message_id="a/b\x00\u202ec"), MEDIA_ID, SHA)
    assert ".." not in key and "\x00" not in key and "\u202e" not in key
    assert key.count("/") == 6


def test_overlong_segments_are_capped() -> None:
    key = keys.object_key(info(message_id="x" * 5000), MEDIA_ID, SHA)
    assert len(key) < 300


def test_audio_extension_ignores_codec_parameters() -> None:
    assert keys.extension(MediaType.AUDIO, "audio/ogg; codecs=opus", None) == "ogg"


def test_office_documents_get_their_extension() -> None:
    mime = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert keys.extension(MediaType.DOCUMENT, mime, None) == "docx"


def test_unknown_mimetype_falls_back_to_an_allowed_extension_of_the_file_name() -> None:
    assert keys.extension(MediaType.DOCUMENT, "application/x-weird", "Relatório Final.ODT") == "odt"


def test_no_usable_extension_gives_bin() -> None:
    assert keys.extension(MediaType.DOCUMENT, None, "../../passwd") == "bin"


def test_content_type_strips_parameters_and_rejects_garbage() -> None:
    assert keys.content_type(MediaType.AUDIO, "audio/ogg; codecs=opus") == "audio/ogg"
    assert keys.content_type(MediaType.DOCUMENT, "text/html\r\nX-Evil: 1") == (
        "application/octet-stream"
    )


def test_an_html_document_gets_no_html_extension_in_its_key() -> None:
    key = keys.object_key(
        info(media_type=MediaType.DOCUMENT, mimetype="text/html", file_name="x.html"),
        MEDIA_ID,
        SHA,
    )
    assert key.endswith("-abababababab.bin")


def test_the_stored_disposition_is_an_attachment_named_after_the_file() -> None:
    disposition = keys.content_disposition(
        info(media_type=MediaType.DOCUMENT, mimetype="text/html", file_name="x.html")
    )
    assert disposition == "attachment; filename=\"x.bin\"; filename*=UTF-8''x.bin"


def test_metadata_values_are_ascii_and_bounded() -> None:
    meta = keys.object_metadata(
        info(file_name="Orçamento\n" + "é" * 1000 + ".pdf"),
        media_id="m1",
        sha256_hex=SHA,
        fetch_path="direct",
    )
    assert all(v.isascii() and "\n" not in v and len(v) <= 256 for v in meta.values())
    assert meta["media-id"] == "m1" and meta["sha256"] == SHA
