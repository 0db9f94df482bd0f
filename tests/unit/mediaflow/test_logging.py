import io
import json
import logging
import sys
from collections.abc import Callable

import pytest
from aiohttp import ClientConnectionResetError
from aiohttp.http_exceptions import BadHttpMessage, ContentEncodingError
from aiohttp.web import RequestPayloadError

from mediaflow import logging as mflog


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_module_level_logger_follows_each_new_configuration() -> None:
    log = mflog.get_logger("mediaflow.test")
    first, second = io.StringIO(), io.StringIO()
    try:
        mflog.configure(fmt="json", level="info", stream=first)
        log.info("before")
        log.debug("dropped")
        mflog.configure(fmt="json", level="debug", stream=second)
        log.debug("after")
    finally:
        mflog.configure(fmt="json", level="warning", stream=sys.__stderr__)
    assert [(e["event"], e["component"]) for e in _lines(first)] == [("before", "mediaflow.test")]
    assert [e["event"] for e in _lines(second)] == ["after"]


def test_a_bound_logger_keeps_its_context_and_redacts_secrets() -> None:
    stream = io.StringIO()
    try:
        mflog.configure(fmt="json", level="info", stream=stream)
        mflog.get_logger("mediaflow.test").bind(media_id="m-1").info("stored", token="s3cr3t")
    finally:
        mflog.configure(fmt="json", level="warning", stream=sys.__stderr__)
    (line,) = _lines(stream)
    assert (line["media_id"], line["token"]) == ("m-1", mflog.REDACTED)
    assert "s3cr3t" not in stream.getvalue()


def test_standard_library_records_are_rendered_and_redacted_like_ours() -> None:
    stream = io.StringIO()
    mflog.register_secrets(["stdlib-s3cr3t-value"])
    try:
        mflog.configure(fmt="json", level="info", stream=stream)
        library = logging.getLogger("somelibrary")
        library.warning("connecting with %s", "stdlib-s3cr3t-value")
        try:
            raise RuntimeError("refused: stdlib-s3cr3t-value")
        except RuntimeError:
            library.exception("failed")
    finally:
        mflog.configure(fmt="json", level="warning", stream=sys.__stderr__)
    warning, error = _lines(stream)
    assert (warning["component"], warning["level"]) == ("somelibrary", "warning")
    assert warning["event"] == f"connecting with {mflog.REDACTED}"
    assert "RuntimeError: refused: ****" in str(error["exception"])
    assert "stdlib-s3cr3t-value" not in stream.getvalue()


def _unparsable_request() -> Exception:
    return BadHttpMessage("Invalid header value char")


def _undecodable_unread_body() -> Exception:
    # What aiohttp meets while it discards the body of a request answered unread.
    error = RequestPayloadError("400, message: Can not decode content-encoding: gzip")
    error.__cause__ = ContentEncodingError("Can not decode content-encoding: gzip")
    return error


def _client_hung_up() -> Exception:
    return ClientConnectionResetError("Cannot write to closing transport")


@pytest.mark.parametrize(
    ("error", "event", "reason"),
    [
        (
            _unparsable_request,
            "http_request_malformed",
            "BadHttpMessage: Invalid header value char",
        ),
        (
            _undecodable_unread_body,
            "http_request_malformed",
            "ContentEncodingError: Can not decode content-encoding: gzip",
        ),
        (
            _client_hung_up,
            "http_client_gone",
            "ClientConnectionResetError: Cannot write to closing transport",
        ),
    ],
)
def test_what_a_client_did_wrong_is_one_info_line_without_a_traceback(
    error: Callable[[], Exception], event: str, reason: str
) -> None:
    def log_malformed_request() -> None:
        try:
            raise error()
        except Exception:
            logging.getLogger("aiohttp.server").exception("Error handling request")

    info, warning = io.StringIO(), io.StringIO()
    try:
        mflog.configure(fmt="json", level="info", stream=info)
        log_malformed_request()
        mflog.configure(fmt="json", level="warning", stream=warning)
        log_malformed_request()
    finally:
        mflog.configure(fmt="json", level="warning", stream=sys.__stderr__)
    (line,) = _lines(info)
    assert line["event"] == event
    assert (line["level"], line["reason"]) == ("info", reason)
    assert "exception" not in line
    assert warning.getvalue() == ""


def test_a_connection_reset_outside_aiohttp_server_stays_an_error() -> None:
    stream = io.StringIO()
    try:
        mflog.configure(fmt="json", level="info", stream=stream)
        try:
            raise ConnectionResetError("storage went away")
        except ConnectionResetError:
            logging.getLogger("botocore").exception("request failed")
    finally:
        mflog.configure(fmt="json", level="warning", stream=sys.__stderr__)
    (line,) = _lines(stream)
    assert (line["event"], line["level"]) == ("request failed", "error")
    assert "ConnectionResetError: storage went away" in str(line["exception"])


class StrictStream(io.TextIOWrapper):
    """A UTF-8 stream that refuses what UTF-8 cannot hold (a file, a pipe with errors=strict)."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)

    def isatty(self) -> bool:
        return False

    def text(self) -> str:
        return self.buffer.getvalue().decode("utf-8")


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_lone_surrogates_nul_and_control_characters_are_logged_without_raising(fmt) -> None:
    stream = StrictStream()
    try:
        mflog.configure(fmt=fmt, level="info", stream=stream)
        mflog.get_logger("mediaflow.test").warning(
            "record_failed",
            error="quota \ud800 exceeded \x00\x07",
            file_name=["a\udcff.jpg"],
            headers={"x-\udcff": "v\ud800"},
        )
        logging.getLogger("somelibrary").warning("bad \ud800 byte")
    finally:
        mflog.configure(fmt="json", level="warning", stream=sys.__stderr__)
    text = stream.text()
    assert "\ufffd" in text or "\\ufffd" in text
    if fmt == "json":
        ours, library = (json.loads(line) for line in text.splitlines())
        assert ours["error"] == "quota \ufffd exceeded \x00\x07"
        assert ours["file_name"] == ["a\ufffd.jpg"]
        assert ours["headers"] == {"x-\ufffd": "v\ufffd"}
        assert library["event"] == "bad \ufffd byte"
        assert "\\ud800" not in text  # no lone surrogate escape for a strict JSON reader


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        (
            "could not connect to postgresql://mediaflow:p@ss@db:5432/media: refused",
            "ss@",
            "postgresql://****@db:5432/media: refused",
        ),
        ("dsn postgresql://u:pa:ss@db/media", "pa:ss", "postgresql://****@db/media"),
        ("dsn postgresql://db/media?password=qs-db-pass", "qs-db-pass", "postgresql://db/media?"),
        ("GET https://cdn.example/x.enc?oh=SIG&oe=1 failed", "SIG", "https://cdn.example/x.enc?"),
        ("GET https://api.example/#access_token=frag-tok", "frag-tok", "https://api.example/#"),
        ("broker SASL_SSL://svc:k@fka-pw@broker:9093 down", "fka-pw", "SASL_SSL://****@broker"),
    ],
)
def test_scrub_masks_the_whole_user_info_query_and_fragment_of_any_url(
    text: str, secret: str, kept: str
) -> None:
    scrubbed = mflog.scrub(text)
    assert secret not in scrubbed
    assert kept in scrubbed


def test_scrub_leaves_text_without_urls_alone() -> None:
    text = "host 'mmg.whatsapp.net' answered 503 at 10:00; a@b wrote"
    assert mflog.scrub(text) == text
