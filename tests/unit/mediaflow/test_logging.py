import io
import json
import logging
import sys

from aiohttp.http_exceptions import BadHttpMessage

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


def test_a_request_aiohttp_cannot_parse_is_one_info_line_without_a_traceback() -> None:
    def log_malformed_request() -> None:
        try:
            raise BadHttpMessage("Invalid header value char")
        except BadHttpMessage:
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
    assert line["event"] == "http_request_malformed"
    assert (line["level"], line["reason"]) == ("info", "Invalid header value char")
    assert "exception" not in line
    assert warning.getvalue() == ""
