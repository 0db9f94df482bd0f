"""The notifier's pure parts: what a notification says, what an answer means, where it goes."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mediaflow.codec import AvroCodec
from mediaflow.config import Secret
from mediaflow.errors import (
    BlockedUrl,
    ConfigError,
    ErrorKind,
    PermanentError,
    ProviderUnavailable,
    TransientError,
)
from mediaflow.kafka.records import InRecord
from mediaflow.processors.notifier import (
    Callback,
    Callbacks,
    NotifierStage,
    answer_error,
    notification,
)
from mediaflow.url_guard import UrlPolicy
from tests.support.notifier import SECRET, described
from tests.support.projection import dead_lettered, detected, failed, stored

EXPIRES = datetime(2026, 11, 28, 12, 5, tzinfo=UTC)
CODEC = AvroCodec()


def link(event: object, _info: object) -> tuple[str, datetime]:
    return f"http://s3.test/{event.key}?X-Amz-Expires=300", EXPIRES  # type: ignore[attr-defined]


def test_a_stored_media_is_told_with_everything_the_platform_needs() -> None:
    event = described(stored("m1", 5), "c1", instance="i9", message="wamid.A")
    note = notification(event, link)
    assert note is not None
    assert (note.webhook_id, note.client_id, note.instance_id) == (event.event_id, "c1", "i9")
    body = json.loads(note.body)
    assert body["type"] == "media.stored"
    assert body["timestamp"] == "2026-11-28T12:00:05.000Z"
    assert body["data"] == {
        "media_id": "m1",
        "client_id": "c1",
        "instance_id": "i9",
        "message_id": "wamid.A",
        "chat_id": event.info.chat_id,
        "media_type": "image",
        "mimetype": "image/jpeg",
        "file_name": None,
        "state": "stored",
        "bucket": "media",
        "key": event.key,
        "size": 1234,
        "sha256": "ab" * 32,
        "content_type": "image/jpeg",
        "download_url": f"http://s3.test/{event.key}?X-Amz-Expires=300",
        "download_url_expires_at": "2026-11-28T12:05:00.000Z",
    }


def test_a_dead_lettered_media_is_told_with_its_reason() -> None:
    note = notification(described(dead_lettered("m1", 9), "c1"), link)
    assert note is not None
    data = json.loads(note.body)["data"]
    assert (data["state"], data["error_kind"]) == ("dead_lettered", "retries_exhausted")
    assert "download_url" not in data


@pytest.mark.parametrize(
    "event",
    [detected("m1"), failed("m1", 3), stored("m1", 5), dead_lettered("m1", 9)],
    ids=["detected", "failed", "stored-without-info", "dead-without-info"],
)
def test_steps_and_events_that_do_not_say_whose_media_are_not_told(event: object) -> None:
    assert notification(event, link) is None


def test_a_hostile_file_name_still_makes_valid_ascii_json() -> None:
    event = described(stored("m1", 5), "c1")
    event = dataclasses.replace(
        event, info=dataclasses.replace(event.info, file_name="a\ud800\x00\u2028.jpg")
    )
    note = notification(event, link)
    assert note is not None
    note.body.decode("ascii")
    assert json.loads(note.body)["data"]["file_name"] == "a\ud800\x00\u2028.jpg"


def test_the_signature_is_the_specifications_hmac() -> None:
    """Standard Webhooks: v1,base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))."""
    callback = Callback("client 'c1'", "https://p.example/h", Secret(SECRET), UrlPolicy(()))
    moment = datetime.fromtimestamp(1_700_000_000, UTC)
    signature = callback.signer().sign("evt-1", moment, b'{"a":1}')
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = hmac.new(key, b'evt-1.1700000000.{"a":1}', hashlib.sha256).digest()
    assert signature == "v1," + base64.b64encode(expected).decode()


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_delivered(status: int) -> None:
    assert answer_error("callback", status, None) is None


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_refused_for_good(status: int) -> None:
    error = answer_error("callback", status, None)
    assert isinstance(error, BlockedUrl)


def test_410_gone_is_final() -> None:
    assert isinstance(answer_error("callback", 410, None), PermanentError)


@pytest.mark.parametrize(
    ("status", "retry_after", "kind", "wait"),
    [
        (429, "7", ErrorKind.RATE_LIMITED, 7.0),
        (503, "120", ErrorKind.SERVER_ERROR, 120.0),
        (503, "9" * 40, ErrorKind.SERVER_ERROR, 86_400.0),  # capped at a day, then by the tiers
        (500, "soon", ErrorKind.SERVER_ERROR, None),
        (500, "-5", ErrorKind.SERVER_ERROR, None),
        (404, None, ErrorKind.SERVER_ERROR, None),  # a misrouted endpoint may be fixed: retry
        (999, None, ErrorKind.SERVER_ERROR, None),
    ],
)
def test_other_answers_are_retried_honouring_a_bounded_retry_after(
    status: int, retry_after: str | None, kind: ErrorKind, wait: float | None
) -> None:
    error = answer_error("callback", status, retry_after)
    assert isinstance(error, ProviderUnavailable) and isinstance(error, TransientError)
    assert (error.kind, error.retry_after) == (kind, wait)


# -- the registry -------------------------------------------------------------------------


def load(tmp_path: Path, text: str, *, allow_private: bool = False) -> Callbacks:
    (tmp_path / "secret").write_text(SECRET)
    path = tmp_path / "tenants.toml"
    path.write_text(text.replace("SECRET_FILE", str(tmp_path / "secret")))
    return Callbacks.load(path, allow_private=allow_private, environ={"WEAK": "whsec_c2hvcnQ="})


def test_an_instance_callback_wins_over_its_clients_and_inherits_its_secret(
    tmp_path: Path,
) -> None:
    callbacks = load(
        tmp_path,
        """
        [clients."2"]
        callback_url = "https://platform.example/hooks"
        callback_secret_file = "SECRET_FILE"

        [tenants."inst-a"]
        client_id = "2"
        callback_url = "http://10.0.0.7/hooks"
        callback_private = true

        [tenants."inst-b"]
        client_id = "2"
        """,
    )
    own = callbacks.for_media("2", "inst-a")
    assert own is not None and own.url == "http://10.0.0.7/hooks"
    assert own.secret.reveal() == SECRET and own.policy.allow_private
    inherited = callbacks.for_media("2", "inst-b")
    assert inherited is not None and inherited.url == "https://platform.example/hooks"
    assert not inherited.policy.allow_private
    assert callbacks.for_media("3", "inst-c") is None


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ('callback_url = "https://p.example/h"', "without a secret"),
        ('callback_url = "https://p.example/h"\ncallback_secret = "x"', "not in the registry"),
        ('callback_url = "https://p.example/h"\ncallback_secret_env = "WEAK"', "holds 5 bytes"),
        ('callback_url = "ftp://p.example/h"', "only http and https"),
        ('callback_url = "https://u:pw@p.example/h"', "carries credentials"),
        ('callback_url = "http://192.168.1.9/h"', "callback_private = true"),
        ('callback_url = "http://169.254.169.254/h"', "link-local"),
        ('callback_url = "https://p.example/h"\ncallback_private = "yes"', "true or false"),
    ],
)
def test_a_bad_callback_is_refused_at_start_with_what_to_fix(
    tmp_path: Path, entry: str, says: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, f'[clients."2"]\n{entry}\n')
    assert says in refused.value.message
    assert "u:pw" not in refused.value.message and SECRET not in refused.value.message


async def test_a_media_of_a_client_without_callback_costs_no_presigning(tmp_path: Path) -> None:
    def refuse(*_args: object) -> tuple[str, datetime]:
        raise AssertionError("presigned a link nobody will receive")

    stage = NotifierStage(
        codec=CODEC,
        callbacks=Callbacks({}, {}),
        sender=None,  # type: ignore[arg-type]  # never reached
        link=refuse,
    )
    event = described(stored("m1", 5), "c-without-callback")
    record = InRecord("media.events", 0, 0, b"m1", CODEC.encode(event), [], None)
    assert await stage.handle(record) == []
